// The access page's copy button: copies the key shown once, and says so. Without JavaScript
// (or a clipboard) the button stays hidden and the key can still be selected by hand.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    const said = button.parentElement.querySelector(".copied");
    if (!source || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(source.textContent);
        said.textContent = "Copied.";
      } catch (error) {
        said.textContent = "Could not copy: select the key and copy it by hand.";
      }
    });
  }
});
