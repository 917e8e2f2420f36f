// Markup for views without a build: html`<div class=${c}>${text}</div>` (htm over Preact).
// Interpolated values are text, never parsed as HTML.
import { h, render } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { render };
export { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
