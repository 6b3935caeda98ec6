// The demo's non-Python OPD applications: they publish through the Lintas HTTP gateway, as
// a PHP, Java or .NET application would. Node.js 18+ with its built-in fetch; no packages.
//
// Started by `lintas demo` (lintas/demo/gateway_client.py), which generates the events:
//   stdin   one JSON object per line: {"app": "<app id>", "event": <CloudEvent>}
//   stdout  one JSON object per event: {"id", "app", "http", "status"} when the gateway
//           took it (http 202, status "sent" or "spooled"), else {"id", "app", "http",
//           "code", "detail"} (http 0: no answer)
//   env     LINTAS_GATEWAY_URL, LINTAS_DEMO_API_KEYS ({"<app id>": "<api key>"})
//
// Each event is one POST /v1/events with the CloudEvent as application/cloudevents+json:
// its id is the idempotency key, so a retry after a lost answer never publishes it twice.
"use strict";

const readline = require("node:readline");

const gatewayUrl = (process.env.LINTAS_GATEWAY_URL || "").replace(/\/+$/, "");
const apiKeys = JSON.parse(process.env.LINTAS_DEMO_API_KEYS || "{}");
const MAX_IN_FLIGHT = 16;
const MAX_ATTEMPTS = 8;
const REQUEST_TIMEOUT_MS = 35000; // above the gateway's own 30 s request timeout
// A key issued a moment ago reaches the gateway through the directory topic within
// seconds; until then the gateway answers 401 "unknown key". Wait for it this long.
const NEW_KEY_GRACE_MS = 30000;
const started = Date.now();

if (!gatewayUrl) {
  process.stderr.write("gateway_client: LINTAS_GATEWAY_URL is not set\n");
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(response) {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) * 1000 : 1000;
}

async function post(app, event) {
  const key = apiKeys[app];
  if (!key) {
    return { http: 0, code: "no_api_key", detail: `no API key for ${app}` };
  }
  let last = { http: 0, code: "no_answer", detail: "not sent" };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    let response;
    try {
      response = await fetch(`${gatewayUrl}/v1/events`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${key}`,
          "Content-Type": "application/cloudevents+json",
        },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      // No answer (connection refused, timeout): the event may or may not be in; the
      // retry carries the same id, so the gateway publishes it at most once.
      last = { http: 0, code: "no_answer", detail: String(error.cause || error) };
      await sleep(1000 * attempt);
      continue;
    }
    const text = await response.text();
    let body = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { detail: text.slice(0, 200) };
    }
    if (response.status === 202) {
      return { http: 202, status: body.status };
    }
    last = { http: response.status, code: body.code || "error", detail: body.detail || "" };
    const keyNotSeenYet =
      response.status === 401 &&
      String(body.reason || "").startsWith("unknown") &&
      Date.now() - started < NEW_KEY_GRACE_MS;
    if (keyNotSeenYet) {
      await sleep(1000);
      attempt--; // waiting for the directory is not a failed attempt
      continue;
    }
    if ([408, 409, 429, 503].includes(response.status)) {
      await sleep(retryAfterMs(response));
      continue;
    }
    return last; // any other 4xx/5xx: retrying the same request will not help
  }
  return last;
}

let inFlight = 0;
const waiting = [];
let closing = false;

function write(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
}

function pump() {
  while (inFlight < MAX_IN_FLIGHT && waiting.length > 0) {
    const { app, event } = waiting.shift();
    inFlight++;
    post(app, event)
      .then((result) => write({ id: event.id, app, ...result }))
      .catch((error) => write({ id: event.id, app, http: 0, code: "client_error", detail: String(error) }))
      .finally(() => {
        inFlight--;
        pump();
        if (closing && inFlight === 0 && waiting.length === 0) {
          process.exit(0);
        }
      });
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  let message;
  try {
    message = JSON.parse(line);
  } catch (error) {
    process.stderr.write(`gateway_client: ignoring a line that is not JSON: ${error}\n`);
    return;
  }
  waiting.push(message);
  pump();
});
lines.on("close", () => {
  closing = true;
  if (inFlight === 0 && waiting.length === 0) process.exit(0);
});
process.stderr.write(`gateway_client: node ${process.version}, gateway ${gatewayUrl}, ` +
  `${Object.keys(apiKeys).length} application(s)\n`);
