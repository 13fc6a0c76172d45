// The hosted session page follows its payment: it asks the same URL for the JSON status every
// few seconds until the session is paid or failed, then shows the way back to the shop.
"use strict";
const ENDED = ["paid", "failed"];
const EVERY_MS = 3000;

function show(status, paidAt) {
  const badge = document.querySelector("[data-field=status]");
  badge.textContent = status;
  badge.className = `status status-${status}`;
  document.getElementById("payment").dataset.status = status;
  if (paidAt) document.querySelector("[data-field=paid_at]").textContent = paidAt;
  if (!ENDED.includes(status)) return;
  document.querySelector("[data-field=waiting]").hidden = true;
  for (const link of document.querySelectorAll("[data-when]")) {
    link.hidden = link.dataset.when !== status;
  }
}

function humanTime(iso) {
  const at = new Date(iso);
  const month = at.toLocaleString("en-GB", { month: "short", timeZone: "UTC" });
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getUTCDate()} ${month} ${at.getUTCFullYear()}, ` +
         `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
}

async function follow() {
  try {
    const answer = await fetch(location.pathname, {
      headers: { Accept: "application/json" }, cache: "no-store", credentials: "omit" });
    if (answer.ok) {
      const status = await answer.json();
      show(status.status, status.paid_at ? humanTime(status.paid_at) : null);
      if (ENDED.includes(status.status)) return;
    }
  } catch (error) {
    // Offline for a moment: try again at the next tick.
  }
  setTimeout(follow, EVERY_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  if (!ENDED.includes(document.getElementById("payment").dataset.status)) {
    setTimeout(follow, EVERY_MS);
  }
});
