// The playground page: the catalog (GET / as JSON) as a list of models with their states, and one model's page
// at #/<name>, where a photo goes to the model's HTTP route and the camera to its socket.io namespace, both as
// the catalog entry names them. Answers are drawn over the image (draw.js); the raw JSON is one click away.
import { describeAnswer, drawAnswer } from "./draw.js";
import { CameraStream } from "./stream.js";

const $ = (id) => document.getElementById(id);
const POLL_LOADING_MS = 2000;  // while a model loads, its progress is refreshed this often
const POLL_IDLE_MS = 15000;
const STATE_WORDS = { ready: "ready", loading: "loading", failed: "failed", not_available: "not available" };

let catalog = [];
let shown = null;  // name of the model whose page is open
let stream = null;
let answerTimes = [];  // when recent answers arrived, for answers per second

// ---- the catalog ----------------------------------------------------------------------------------------

async function refreshCatalog() {
  try {
    const response = await fetch("/", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`GET / answered ${response.status}`);
    catalog = await response.json();
    $("catalog-error").hidden = true;
  } catch (err) {
    showError($("catalog-error"), `Could not read the catalog: ${err.message}`);
  }
  renderList();
  renderModel();
  const loading = catalog.some((m) => m.status.state === "loading");
  setTimeout(refreshCatalog, loading ? POLL_LOADING_MS : POLL_IDLE_MS);
}

function statusText({ state, detail, load_seconds, replicas }) {
  const parts = [];
  if (state === "ready" && load_seconds != null) parts.push(`loaded in ${load_seconds.toFixed(1)} s`);
  if (replicas) parts.push(`${replicas} replica${replicas > 1 ? "s" : ""}`);
  if (detail) parts.push(detail);
  return parts.join(", ");
}

// A bar for a weight download whose size is known (the text says the rest: bytes, seconds).
function progressBar({ progress }) {
  if (!progress || !progress.bytes_total) return "";
  const bar = el("progress");
  bar.max = progress.bytes_total;
  bar.value = progress.bytes_done;
  bar.setAttribute("aria-label", "weights downloaded");
  return bar;
}

function stateBadge(status) {
  const badge = el("span", `state state-${status.state}`, STATE_WORDS[status.state] || status.state);
  badge.dataset.state = status.state;
  return badge;
}

function renderList() {
  $("models").replaceChildren(...catalog.map((model) => {
    const item = el("li");
    item.dataset.model = model.name;
    const title = el("h3");
    const link = el("a", "", model.name);
    link.href = `#/${model.name}`;
    title.append(link, " ", stateBadge(model.status));
    const detail = el("p", "detail", statusText(model.status));
    detail.append(" ", progressBar(model.status));
    item.append(title, detail);
    const about = model.description && model.description.first;
    if (about) item.append(el("p", "", about));
    return item;
  }));
}

// ---- one model's page -----------------------------------------------------------------------------------

function current() {
  return catalog.find((m) => m.name === shown);
}

function renderModel() {
  const model = current();
  $("catalog").hidden = !!model;
  $("model").hidden = !model;
  if (!model) return;
  $("model-title").textContent = model.name;
  $("model-status").replaceChildren(stateBadge(model.status), " ", statusText(model.status), " ",
                                    progressBar(model.status));
  renderAbout(model.description || {});
  const ready = model.status.state === "ready";
  $("file").disabled = !ready;
  $("camera").disabled = !ready || !model.socket;
  $("camera").title = model.socket ? "" : "this model has no socket.io route";
}

function renderAbout(d) {
  const about = [d.first, d.second, d.third].filter(Boolean).map((text) => el("p", "", text));
  const facts = [["Authors", d.authors], ["Organization", d.organization], ["Framework", d.framework],
                 ["Licence", d.licence], ["Paper", d.paper, true], ["Code", d.github, true]];
  const list = el("ul");
  for (const [name, value, isLink] of facts.filter(([, value]) => value)) {
    const item = el("li", "", `${name}: `);
    if (isLink && /^https?:\/\//.test(value)) {
      const link = el("a", "", value);
      link.href = value;
      item.append(link);
    } else item.append(value);
    list.append(item);
  }
  $("model-about").replaceChildren(...about, list);
}

function openPage() {
  stopCamera();
  shown = decodeURIComponent(location.hash.replace(/^#\/?/, "")) || null;
  clearAnswer();
  renderModel();
}

function clearAnswer() {
  answerTimes = [];
  $("error").hidden = true;
  for (const id of ["latency", "fps", "dropped"]) $(id).textContent = "–";
  $("answered").textContent = "0";
  $("answers").replaceChildren();
  $("raw").textContent = "";
  const canvas = $("canvas");
  canvas.width = canvas.height = 0;
}

// ---- answers --------------------------------------------------------------------------------------------

function showAnswer(body, image, latencyMs) {
  const canvas = $("canvas");
  canvas.width = image.width || image.videoWidth;
  canvas.height = image.height || image.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  drawAnswer(ctx, body.result);
  $("answers").replaceChildren(...describeAnswer(body.result).map(({ text, color }) => {
    const item = el("li");
    if (color) {
      const swatch = el("span", "swatch");
      swatch.style.background = color;
      item.append(swatch);
    }
    item.append(text);
    return item;
  }));
  $("raw").textContent = JSON.stringify(body, null, 2);
  $("latency").textContent = `${Math.round(latencyMs)} ms (model ${Math.round(body.timings.inference_ms)} ms)`;
  if (body.dropped_frames != null) $("dropped").textContent = String(body.dropped_frames);
  $("answered").textContent = String(Number($("answered").textContent) + 1);
  const now = performance.now();
  answerTimes = answerTimes.filter((t) => now - t < 2000).concat(now);
  const span = (now - answerTimes[0]) / 1000;
  $("fps").textContent = answerTimes.length > 1 ? (( answerTimes.length - 1) / span).toFixed(1) : "–";
  $("error").hidden = true;
}

function showError(node, text) {
  node.textContent = text;
  node.hidden = false;
}

// ---- a still image over HTTP ----------------------------------------------------------------------------

async function sendFile(file) {
  const model = current();
  if (!model || !file) return;
  $("error").hidden = true;
  const base64 = await readBase64(file);
  const started = performance.now();
  let response, body;
  try {
    // The catalog's format header plus the file's bytes: the server, not the browser, judges the image.
    response = await fetch(model.http.path, {
      method: model.http.method,
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ data: model.http.format + base64, id: file.name }),
    });
    body = await readJson(response);
  } catch (err) {
    return showError($("error"), `${model.http.path}: ${err.message}`);
  }
  const latency = performance.now() - started;
  if (!response.ok) {
    // Our server answers errors in JSON; a proxy in front (a 413 for a large file, a 502) may answer HTML.
    return showError($("error"), body && body.error ? `${response.status} ${body.error}: ${body.detail}`
      : `${response.status} ${response.statusText || "error"}: ${model.http.path} answered no JSON`);
  }
  if (!body) return showError($("error"), `${model.http.path}: the answer is not JSON`);
  const image = await createImageBitmap(file);
  showAnswer(body, image, latency);
  image.close();
}

// The body as JSON, or null when it is not JSON (an error page of a proxy).
async function readJson(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// ---- the camera over socket.io --------------------------------------------------------------------------

async function toggleCamera() {
  if (stream) return stopCamera();
  const model = current();
  clearAnswer();
  stream = new CameraStream(model, $("video"), {
    answer: showAnswer,
    error: (text) => showError($("error"), text),
  });
  $("camera").textContent = "Stop camera";
  try {
    await stream.start();
  } catch (err) {
    stopCamera();
    showError($("error"), `Camera: ${err.message}`);
  }
}

function stopCamera() {
  if (!stream) return;
  stream.stop();
  stream = null;
  $("camera").textContent = "Start camera";
}

// ---- wiring ---------------------------------------------------------------------------------------------

function el(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function wireDrop(zone) {
  const over = (on) => (event) => { event.preventDefault(); zone.classList.toggle("over", on); };
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => { over(false)(event); sendFile(event.dataTransfer.files[0]); });
  // Keyboard users: Enter or Space on the drop zone opens the file chooser.
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file").click(); }
  });
}

$("file").addEventListener("change", (event) => { sendFile(event.target.files[0]); event.target.value = ""; });
$("camera").addEventListener("click", toggleCamera);
wireDrop($("drop"));
window.addEventListener("hashchange", openPage);
openPage();
refreshCatalog();
