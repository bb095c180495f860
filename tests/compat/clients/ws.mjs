// npm `ws`, reconnecting with ?last_event_id= after any close. Usage: node ws.mjs URL TOKEN
import WebSocket from "ws";
import { Reporter } from "./report.mjs";

const [base, token] = process.argv.slice(2);
const report = new Reporter();

function open() {
  const url = `${base.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}&last_event_id=${report.lastId ?? 0}`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  socket.on("message", (raw, isBinary) => report.data(isBinary ? raw.toString("utf8") : raw.toString()));
  socket.on("unexpected-response", (request, response) => {
    report.emit("status", { status: response.statusCode });
    request.destroy();
  });
  socket.on("error", (error) => report.emit("error", { error: error.code || error.message }));
  socket.on("close", (code, reason) => {
    report.emit("ws_close", { code, reason: reason.toString() });
    setTimeout(open, 500);
  });
}

open();
