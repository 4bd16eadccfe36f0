// The studio's own behaviour, no framework: the live length counter, drag and drop of slots,
// and the calendar's keyboard shortcuts. Every request carries the page's CSRF token.
(function () {
  "use strict";
  const csrf = () => document.body.dataset.csrf;

  function post(url, fields) {
    const body = new URLSearchParams(fields);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin",
                        headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" } });
  }

  // A slot's `persona|month|id` (its checkbox's value) and its local time.
  const refOf = (slot) => slot.querySelector('input[name="ids"]').value;
  const timeOf = (slot) => slot.querySelector("time").textContent;

  function flash(text) {
    const box = document.getElementById("flash");
    if (box) box.textContent = text;
  }

  // 1. The live X weighted-length counter of the post editor (xlength.js).
  function updateCounter(textarea) {
    const counter = document.querySelector('[data-testid="char-count"]');
    if (!counter || !window.pfWeightedLength) return;
    const length = window.pfWeightedLength(textarea.value);
    const max = Number(counter.dataset.max);
    counter.textContent = length + " / " + max;
    counter.classList.toggle("over", length > max);
  }
  document.addEventListener("input", (event) => {
    if (event.target.matches('[data-testid="post-text"]')) updateCounter(event.target);
  });

  // 2. Drag a slot onto another day: the server checks the move (in the month, not two
  //    slots in one minute) and the slot moves only when it agreed.
  document.addEventListener("dragstart", (event) => {
    const slot = event.target.closest && event.target.closest('[data-testid="slot"]');
    if (!slot) return;
    event.dataTransfer.setData("text/plain", refOf(slot));
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", (event) => {
    if (event.target.closest && event.target.closest("td[data-day]")) event.preventDefault();
  });
  document.addEventListener("drop", async (event) => {
    const cell = event.target.closest && event.target.closest("td[data-day]");
    if (!cell) return;
    event.preventDefault();
    const ref = event.dataTransfer.getData("text/plain");
    const [persona, month, id] = ref.split("|");
    const box = document.querySelector('input[name="ids"][value="' + CSS.escape(ref) + '"]');
    const slot = box && box.closest('[data-testid="slot"]');
    if (!slot) return;
    const answer = await post("/slots/move", { persona: persona, month: month, slot: id,
                                               day: cell.dataset.day, time: timeOf(slot) });
    const reply = await answer.json();
    if (!answer.ok) { flash("Not moved: " + reply.error); return; }
    cell.appendChild(slot);
    flash("Moved " + id + " to " + reply.scheduled_at.slice(0, 16).replace("T", " "));
  });

  // 3. Keyboard: j/k next/previous slot, a approve, s skip, Enter open.
  const slots = () => Array.from(document.querySelectorAll('[data-testid="slot"]'));
  async function move(slot, action) {
    const ref = refOf(slot);
    const answer = await post("/slots/bulk", { action: action, ids: ref });
    const reply = await answer.json();
    const status = (reply.statuses || {})[ref];
    if (status) slot.dataset.status = status;  // the label follows (CSS)
    flash((reply.problems || []).join("; ") || (slot.dataset.slotId + ": " + status));
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, textarea, select") || event.ctrlKey || event.metaKey) return;
    const all = slots();
    if (!all.length) return;
    const current = document.activeElement.closest &&
      document.activeElement.closest('[data-testid="slot"]');
    const index = current ? all.indexOf(current) : -1;
    if (event.key === "j" || event.key === "k") {
      const next = all[Math.min(all.length - 1, Math.max(0, index + (event.key === "j" ? 1 : -1)))];
      next.focus();
      event.preventDefault();
    } else if (current && (event.key === "a" || event.key === "s")) {
      move(current, event.key === "a" ? "approve" : "skip");
      event.preventDefault();
    } else if (current && event.key === "Enter" && document.activeElement === current) {
      current.querySelector('[data-testid="open-post"]').click();
    }
  });
})();
