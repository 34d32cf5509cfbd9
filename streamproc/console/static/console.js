// Shared by every console page: the CSRF token, calling operations, local times.

export const PREFIX = "/console";

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// fetch() with the session's CSRF token on every state-changing request.
export async function post(url, body, contentType = "application/json") {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (contentType) headers["Content-Type"] = contentType;
  return fetch(url, { method: "POST", headers, body, credentials: "same-origin" });
}

// An operation as the signed-in user: the AWS JSON request in, the AWS JSON answer out.
// Errors are thrown as Error with .code (the Rekognition error type) and .response.
export async function callOperation(operation, params) {
  const response = await post(`${PREFIX}/api/${operation}`, JSON.stringify(params));
  const text = await response.text();
  let data;
  try { data = JSON.parse(text); } catch { data = { __type: "InternalServerError", Message: text }; }
  if (!response.ok) {
    const err = new Error(data.Message || data.message || `${operation} failed (${response.status})`);
    err.code = data.__type || `HTTP${response.status}`;
    err.response = data;
    throw err;
  }
  return data;
}

// A File or Blob as base64 (Image.Bytes in the AWS JSON protocol).
export function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// Show the server's UTC <time> elements in the browser's own time zone.
export function localTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.textContent = when.toLocaleString();
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

localTimes();
