// The camera over socket.io: frames go to the model's own socket.io path and namespace on the catalog's emit
// event, answers come back on its event. The server keeps one waiting frame per connection and replaces it
// with newer ones (newest frame wins, counted in `dropped_frames`); here at most MAX_IN_FLIGHT frames are
// unanswered, so a slow model gets fresh frames without the browser queueing seconds of video.

const FRAME_RATE = 15;
const MAX_IN_FLIGHT = 3;
const JPEG_QUALITY = 0.8;

export class CameraStream {
  // model: a catalog entry (its `socket`); video: a <video>; on: {answer(body, frame, latencyMs), error(text)}
  constructor(model, video, on) {
    Object.assign(this, { model, video, on, sent: 0, frames: new Map() });
    this.capture = document.createElement("canvas");
  }

  async start() {
    this.media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    this.video.srcObject = this.media;
    await this.video.play();
    const { path, namespace, emit, event } = this.model.socket;
    // Reconnects by itself when its replica goes away (a new replica answers); frames are sent only while connected.
    this.socket = io(location.origin + namespace, { path, transports: ["websocket"] });
    this.socket.on(event, (body) => this.answered(body));
    this.socket.on("error", (body) => { this.forgetOldest(); this.on.error(`${body.error}: ${body.detail}`); });
    this.socket.on("connect_error", (err) => this.on.error(`socket.io: ${err.message}`));
    this.socket.on("disconnect", (reason) => {
      this.forgetAll();  // their answers will not come
      if (this.timer) this.on.error(`socket.io disconnected (${reason}); reconnecting`);
    });
    this.emitEvent = emit;
    this.timer = setInterval(() => this.sendFrame(), 1000 / FRAME_RATE);
  }

  async sendFrame() {
    if (this.grabbing || !this.socket.connected || this.frames.size >= MAX_IN_FLIGHT || !this.video.videoWidth) return;
    this.grabbing = true;
    const frame = await createImageBitmap(this.video).finally(() => { this.grabbing = false; });
    if (!this.timer) return frame.close();  // stopped while grabbing
    this.capture.width = frame.width;
    this.capture.height = frame.height;
    this.capture.getContext("2d").drawImage(frame, 0, 0);
    const id = ++this.sent;
    this.frames.set(id, { frame, at: performance.now() });
    this.socket.emit(this.emitEvent, { data: this.capture.toDataURL("image/jpeg", JPEG_QUALITY), id });
  }

  // Answers come in order on a connection: frames older than the answered one were dropped by the server.
  answered(body) {
    const mine = this.frames.get(body.id);
    for (const [id, { frame }] of this.frames) {
      if (id > body.id) break;
      if (id < body.id) frame.close();
      this.frames.delete(id);
    }
    if (!mine) return;
    this.on.answer(body, mine.frame, performance.now() - mine.at);
    mine.frame.close();
  }

  forgetOldest() {
    const [oldest] = this.frames.keys();
    if (oldest === undefined) return;
    this.frames.get(oldest).frame.close();
    this.frames.delete(oldest);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.socket) this.socket.disconnect();
    if (this.media) this.media.getTracks().forEach((track) => track.stop());
    this.video.srcObject = null;
    this.forgetAll();
  }

  forgetAll() {
    for (const { frame } of this.frames.values()) frame.close();
    this.frames.clear();
  }
}
