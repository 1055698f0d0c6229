// Renders every Vega-Lite specification embedded in the page (see the {% chart %} tag).
// Specs travel as <script type="application/json">, which the content security policy allows.
(function () {
  // Swedish number format (1 234,5) unless the page is in English.
  var SV = { decimal: ",", thousands: "\u00a0", grouping: [3], currency: ["", "\u00a0kr"] };
  function embedOptions() {
    var opts = { renderer: "svg", actions: false };
    if ((document.documentElement.lang || "sv").indexOf("sv") === 0) opts.formatLocale = SV;
    return opts;
  }
  function render(root) {
    root.querySelectorAll("[data-vega-spec]").forEach(function (el) {
      if (el.dataset.rendered) return;
      var specEl = document.getElementById(el.dataset.vegaSpec);
      if (!specEl || typeof vegaEmbed === "undefined") return;
      var spec = JSON.parse(specEl.textContent);
      el.dataset.rendered = "1";
      vegaEmbed(el, spec, embedOptions()).then(function (res) {
        // Clicking a mark that carries a url (e.g. a unit in a funnel plot) opens it.
        res.view.addEventListener("click", function (_event, item) {
          if (item && item.datum && item.datum.url) window.location.href = item.datum.url;
        });
        var svg = el.querySelector("svg");
        if (svg) { svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false"); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSwap", function (e) { render(e.target); });
})();
