// A QR code drawn as SVG from text (e.g. a payment's code_url), with the vendored encoder.
import { encode } from "uqr";
import { html } from "./html.js";

export function QrCode({ text, label }) {
  const { data, size } = encode(text, { ecc: "M", border: 2 });
  let path = "";
  data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) path += `M${x} ${y}h1v1h-1z`;
    }),
  );
  return html`<svg viewBox=${`0 0 ${size} ${size}`} role="img" aria-label=${label} data-code=${text} shape-rendering="crispEdges">
    <rect width=${size} height=${size} fill="#fff" /><path d=${path} fill="#000" />
  </svg>`;
}
