/* "Back" links of viewflow's confirmation pages without inline onclick handlers (CSP,
 * docs/adr/0016): <a data-history-back="turbo"> goes back and, like viewflow's own
 * handler, reloads the list through Turbo. */
(function () {
  "use strict";
  if (window.samverkanHistoryBack) { return; }
  window.samverkanHistoryBack = true;
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-history-back]");
    if (!link) { return; }
    event.preventDefault();
    window.history.back();
    if (link.dataset.historyBack === "turbo" && window.Turbo) {
      window.setTimeout(function () { window.Turbo.visit("."); }, 100);
    }
  });
}());
