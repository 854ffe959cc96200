// Jaring review app: keyboard shortcuts and small conveniences. No dependencies, no network calls.
(function () {
  "use strict";

  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function submit(form) {
    if (form) { if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); } }
  }

  // --- inbox list ---------------------------------------------------------------------------------
  var items = Array.prototype.slice.call(document.querySelectorAll("#inbox .item"));
  var current = -1;

  function select(index) {
    if (!items.length) { return; }
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (item, i) { item.classList.toggle("current", i === current); });
    items[current].scrollIntoView({ block: "nearest" });
    items[current].focus({ preventScroll: true });
  }

  function currentId() {
    return current >= 0 ? items[current].getAttribute("data-id") : null;
  }

  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll('#inbox input[name="ids"]').forEach(function (box) { box.checked = selectAll.checked; });
    });
  }

  // --- composer: kelurahan options follow the chosen kecamatan ------------------------------------
  var kecamatan = document.getElementById("kecamatan");
  var kelurahan = document.getElementById("kelurahan");
  function filterKelurahan() {
    var chosen = kecamatan.value;
    Array.prototype.forEach.call(kelurahan.options, function (option) {
      var kec = option.getAttribute("data-kecamatan");
      option.hidden = Boolean(chosen && kec && kec !== chosen);
    });
  }
  if (kecamatan && kelurahan) { kecamatan.addEventListener("change", filterKelurahan); filterKelurahan(); }

  // --- keyboard -------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (items.length) {
      var id;
      if (key === "j") { select(current + 1); }
      else if (key === "k") { select(current - 1); }
      else if (key === "x" && (id = currentId())) {
        var box = items[current].querySelector('input[name="ids"]');
        if (box) { box.checked = !box.checked; }
      }
      else if (key === "c" && (id = currentId())) { submit(document.getElementById("confirm-" + id)); }
      else if (key === "r" && (id = currentId())) { submit(document.getElementById("reject-" + id)); }
      else if (key === "e" && (id = currentId())) { window.location.assign("/kiriman/" + id + "/aduan"); }
      else if (key === "Enter" && current >= 0) { items[current].querySelector("a.text").click(); }
      else { return; }
      event.preventDefault();
      return;
    }
    if (document.querySelector("article.post")) {
      if (key === "c") { submit(document.getElementById("confirm-form")); }
      else if (key === "r") { submit(document.getElementById("reject-form")); }
      else if (key === "e") { var link = document.getElementById("compose-link"); if (link) { link.click(); } }
      else if (key === "u") { var back = document.getElementById("back"); if (back) { back.click(); } }
      else { return; }
      event.preventDefault();
    }
  });
})();
