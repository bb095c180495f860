/**
 * A real dropsync server for the client's tests: `python -m uvicorn app.main:create_app` in a child
 * process on a loopback port, on its own SQLite file, as tests/support/servers.py starts it.
 *
 * The Python is $DROPSYNC_TEST_PYTHON (the pytest hook sets it) or the repository's .venv. Every wait is
 * bounded; a server that does not come up fails with its own output.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const PYTHON = process.env.DROPSYNC_TEST_PYTHON || join(REPO, ".venv", "bin", "python");

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Resolve with `promise`, or reject after `ms` saying what did not happen. */
export function within(ms, promise, what = "an answer") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Poll `check` every 10 ms until it returns a truthy value (bounded). */
export async function until(check, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not met within ${ms} ms`);
    }
    await sleep(10);
  }
}

export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

export class Server {
  /** @param {{env?: Record<string, string>, port?: number, folder?: string}} [options] */
  constructor(options = {}) {
    this.env = options.env || {};
    this.port = options.port || null;
    this.folder = options.folder || mkdtempSync(join(tmpdir(), "dropsync-js-"));
    this.child = null;
    this.output = "";
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Start (again, on the same port and database after `stop()`); resolves once /health answers. */
  async start(timeoutMs = 30000) {
    this.port = this.port || (await freePort());
    const env = {
      ...process.env,
      DROPSYNC_DATABASE_URL: `sqlite:///${this.folder}/dropsync.db`,
      DROPSYNC_DEMO: "false",
      DROPSYNC_RATE_LIMIT: "false",
      ...this.env,
    };
    const args = [
      "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1", "--port", String(this.port),
      "--no-access-log", "--ws-per-message-deflate", "false", "--timeout-graceful-shutdown", "5",
    ];
    const child = spawn(PYTHON, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    child.stdout.on("data", (chunk) => (this.output += chunk));
    child.stderr.on("data", (chunk) => (this.output += chunk));
    const exited = new Promise((done) => child.once("exit", (code) => done(code)));
    child.once("error", (error) => (this.output += `\n${error}`));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const early = await Promise.race([exited, sleep(50).then(() => undefined)]);
      if (early !== undefined) {
        throw new Error(`the server exited with ${early}:\n${this.output}`);
      }
      try {
        const health = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
        if (health.ok) {
          return this;
        }
      } catch {
        // not up yet
      }
    }
    await this.stop();
    throw new Error(`the server did not answer /health within ${timeoutMs} ms:\n${this.output}`);
  }

  /** SIGTERM and wait (bounded); SIGKILL if it hangs. */
  async stop(timeoutMs = 15000) {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return;
    }
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGTERM");
    try {
      await within(timeoutMs, exited, "exit after SIGTERM");
    } catch (error) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`${error.message}:\n${this.output}`);
    }
  }

  /** Stop, and remove the database folder. */
  async close() {
    await this.stop();
    rmSync(this.folder, { recursive: true, force: true });
  }

  /** A JSON request to the API; throws on a status >= 400 unless `expect` says otherwise. */
  async api(path, { method = "GET", body, token, expect } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (token) {
      headers.Authorization = `Bearer ${token}`;
    }
    const response = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    const text = await response.text();
    if (expect !== undefined ? response.status !== expect : response.status >= 400) {
      throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }

  /** A new user and a token of theirs: {username, password, token}. */
  async newUser(prefix = "js") {
    const username = `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
    const password = `pw-${Math.random().toString(36).slice(2)}`;
    await this.api("/auth/register", { method: "POST", body: { username, password } });
    const token = await this.issueToken(username, password);
    return { username, password, token };
  }

  async issueToken(username, password) {
    const issued = await this.api("/auth/token", { method: "POST", body: { username, password } });
    return issued.access_token;
  }
}
