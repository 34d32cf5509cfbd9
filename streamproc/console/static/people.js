// People pages: confirm deletions, and upload photos one file at a time (each its own
// request, so many large photos fit and each shows its own outcome as it finishes).
// Without this script the forms still work as plain HTML posts.
import { csrfToken, el } from "./console.js";

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

const upload = document.getElementById("upload-form");
const progress = document.getElementById("u-progress");

async function sendOne(file, name, allFaces) {
  const body = new FormData();
  body.append("name", name);
  if (allFaces) body.append("all_faces", "1");
  body.append("photos", file, file.name);
  const response = await fetch(upload.action, {
    method: "POST", body, credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken(), Accept: "application/json" },
  });
  let data;
  try { data = await response.json(); } catch { data = { Error: `upload failed (${response.status})` }; }
  if (data.Error) return { error: data.Error };
  const outcome = (data.Files || [])[0] || {};
  return outcome.Error ? { error: outcome.Error } : { faces: outcome.FaceIds || [] };
}

upload?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = [...upload.elements.photos.files];
  const name = upload.elements.name.value.trim();
  const allFaces = upload.elements.all_faces.checked;
  const button = upload.querySelector('button[type="submit"]');
  button.disabled = true;
  progress.replaceChildren();
  let indexed = 0;
  for (const file of files) {
    const item = el("li", { text: `${file.name}: uploading…` });
    progress.append(item);
    try {
      const result = await sendOne(file, name, allFaces);
      if (result.error) {
        item.className = "error";
        item.textContent = `${file.name}: ${result.error}`;
      } else {
        indexed += result.faces.length;
        item.className = "ok";
        item.textContent = `${file.name}: ${result.faces.length} face${result.faces.length === 1 ? "" : "s"} indexed`;
      }
    } catch (err) {
      item.className = "error";
      item.textContent = `${file.name}: ${err}`;
    }
  }
  button.disabled = false;
  if (indexed) {
    const again = el("a", { href: window.location.pathname, text: "Show the new faces" });
    progress.append(el("li", {}, again));
  }
});
