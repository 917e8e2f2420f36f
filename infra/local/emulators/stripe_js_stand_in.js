/* A stand-in for Stripe.js v3, served by the local Stripe emulator at /js.stripe.com/v3/.
 *
 * It implements what the storefront uses, against the emulator's real API:
 *   Stripe(publishableKey) -> { elements(), createPaymentMethod(), handleNextAction() }
 *   elements({locale}).create("card") -> { mount(target), on(event, fn), clear(), destroy() }
 * Card data goes from these fields straight to POST /v1/payment_methods with the publishable
 * key, never to the shop's own API. handleNextAction({clientSecret}) shows the emulator's
 * 3-D Secure page in a dialog (as Stripe.js shows the bank's) and resolves when the shopper
 * has answered it.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  var TEXT = {
    en: {
      number: "Card number", expiry: "Expiry (MM / YY)", cvc: "CVC",
      incomplete: "Your card number is incomplete.", invalid: "Your card number is invalid.",
      expiryBad: "Your card's expiration date is incomplete.", cvcBad: "Your card's security code is incomplete.",
      challenge: "Confirm the payment with your bank"
    },
    zh: {
      number: "卡号", expiry: "有效期 (MM / YY)", cvc: "安全码",
      incomplete: "您的卡号不完整。", invalid: "您的卡号无效。",
      expiryBad: "您的卡有效期不完整。", cvcBad: "您的卡安全码不完整。",
      challenge: "请向发卡行确认此付款"
    }
  };

  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = +digits[digits.length - 1 - i];
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function CardElement(text) {
    this.text = text;
    this.handlers = {};
    this.node = null;
  }
  CardElement.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    var t = this.text;
    var wrap = document.createElement("div");
    wrap.className = "StripeElement";
    wrap.style.cssText = "display:flex;flex-wrap:wrap;gap:8px";
    var self = this;
    function field(name, label, width, placeholder, autocomplete) {
      var l = document.createElement("label");
      l.style.cssText = "display:flex;flex-direction:column;font-size:13px;flex:" + width;
      var span = document.createElement("span");
      span.textContent = label;
      var input = document.createElement("input");
      input.name = "stripe-" + name;
      input.inputMode = "numeric";
      input.autocomplete = autocomplete;
      input.placeholder = placeholder;
      input.style.cssText = "font:inherit;padding:8px;border:1px solid #767676;border-radius:4px;min-width:0";
      input.addEventListener("input", function () { self._emit("change", self._state()); });
      l.appendChild(span);
      l.appendChild(input);
      wrap.appendChild(l);
      return input;
    }
    this.number = field("cardnumber", t.number, "1 1 100%", "4242 4242 4242 4242", "cc-number");
    this.expiry = field("exp-date", t.expiry, "1 1 40%", "12 / 34", "cc-exp");
    this.cvc = field("cvc", t.cvc, "1 1 30%", "123", "cc-csc");
    host.appendChild(wrap);
    this.node = wrap;
    this._emit("ready", {});
  };
  CardElement.prototype.on = function (event, fn) {
    (this.handlers[event] = this.handlers[event] || []).push(fn);
  };
  CardElement.prototype._emit = function (event, payload) {
    (this.handlers[event] || []).forEach(function (fn) { fn(payload); });
  };
  CardElement.prototype.focus = function () { if (this.number) this.number.focus(); };
  CardElement.prototype.clear = function () {
    [this.number, this.expiry, this.cvc].forEach(function (i) { if (i) i.value = ""; });
  };
  CardElement.prototype.destroy = function () {
    if (this.node && this.node.parentNode) this.node.parentNode.removeChild(this.node);
    this.node = null;
  };
  CardElement.prototype._state = function () {
    var r = this._read();
    return { elementType: "card", complete: !r.error, empty: !this.number.value, error: undefined };
  };
  CardElement.prototype._read = function () {
    var t = this.text;
    var number = (this.number.value || "").replace(/\D/g, "");
    var expiry = (this.expiry.value || "").replace(/[^\d/]/g, "");
    var parts = expiry.indexOf("/") >= 0 ? expiry.split("/") : [expiry.slice(0, 2), expiry.slice(2)];
    var month = parseInt(parts[0], 10);
    var year = parseInt(parts[1], 10);
    var cvc = (this.cvc.value || "").replace(/\D/g, "");
    if (number.length < 16) return { error: { type: "validation_error", code: "incomplete_number", message: t.incomplete } };
    if (!luhn(number)) return { error: { type: "validation_error", code: "invalid_number", message: t.invalid } };
    if (!(month >= 1 && month <= 12) || !(year >= 0)) return { error: { type: "validation_error", code: "incomplete_expiry", message: t.expiryBad } };
    if (cvc.length < 3) return { error: { type: "validation_error", code: "incomplete_cvc", message: t.cvcBad } };
    return { card: { number: number, exp_month: month, exp_year: year < 100 ? 2000 + year : year, cvc: cvc } };
  };

  function form(fields) {
    return Object.keys(fields).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(fields[k]);
    }).join("&");
  }

  function Stripe(key, options) {
    if (typeof key !== "string" || key.indexOf("pk_") !== 0) {
      throw new Error("Stripe(): a publishable key (pk_...) is required");
    }
    var locale = (options && options.locale) || "en";
    return {
      elements: function (opts) {
        var lang = ((opts && opts.locale) || locale || "en").slice(0, 2);
        var text = TEXT[lang] || TEXT.en;
        return { create: function (type) {
          if (type !== "card") throw new Error("this Stripe.js stand-in has only the card element");
          return new CardElement(text);
        } };
      },
      createPaymentMethod: function (params) {
        var element = params && (params.card || params.element);
        if (!element || !element._read) {
          return Promise.resolve({ error: { type: "validation_error", message: "card element required" } });
        }
        var read = element._read();
        if (read.error) return Promise.resolve({ error: read.error });
        var body = {
          key: key,
          type: "card",
          "card[number]": read.card.number,
          "card[exp_month]": String(read.card.exp_month),
          "card[exp_year]": String(read.card.exp_year),
          "card[cvc]": read.card.cvc
        };
        var billing = (params && params.billing_details) || {};
        Object.keys(billing).forEach(function (k) {
          if (typeof billing[k] === "string") body["billing_details[" + k + "]"] = billing[k];
        });
        return fetch(base + "/v1/payment_methods", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: form(body)
        }).then(function (response) {
          return response.json().then(function (json) {
            if (!response.ok) return { error: json.error || { message: "card refused" } };
            return { paymentMethod: json };
          });
        });
      },
      handleNextAction: function (params) {
        var secret = params && params.clientSecret;
        if (!secret) return Promise.resolve({ error: { message: "clientSecret required" } });
        var intentId = secret.split("_secret_")[0];
        var url = base + "/_local/3ds/" + encodeURIComponent(intentId) + "?client_secret=" + encodeURIComponent(secret);
        return new Promise(function (resolve) {
          var lang = (locale || "en").slice(0, 2);
          var dialog = document.createElement("dialog");
          dialog.setAttribute("aria-label", (TEXT[lang] || TEXT.en).challenge);
          dialog.style.cssText = "padding:0;border:0;border-radius:8px;width:min(420px,95vw);height:320px";
          var frame = document.createElement("iframe");
          frame.title = (TEXT[lang] || TEXT.en).challenge;
          frame.src = url;
          frame.style.cssText = "border:0;width:100%;height:100%";
          dialog.appendChild(frame);
          document.body.appendChild(dialog);
          function done(event) {
            if (event.origin !== base || !event.data || event.data.type !== "stripe-3ds-result") return;
            window.removeEventListener("message", done);
            dialog.close();
            dialog.remove();
            var ok = event.data.status === "succeeded";
            resolve(ok
              ? { paymentIntent: { id: intentId, status: "succeeded" } }
              : { error: { type: "card_error", code: "payment_intent_authentication_failure",
                  message: "We are unable to authenticate your payment method." } });
          }
          window.addEventListener("message", done);
          dialog.showModal();
        });
      }
    };
  }
  Stripe.version = 3;
  window.Stripe = Stripe;
})();
