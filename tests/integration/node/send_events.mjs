// A non-Python client of the Lintas gateway: Node.js 20 with its built-in fetch, no packages.
//
// Usage: node send_events.mjs <gateway url> <event json file>
//   with LINTAS_API_KEY in the environment. Sends one event, a batch, an NDJSON batch and a
//   CloudEvent, retries one of them with the same Idempotency-Key, and prints every event id
//   the gateway accepted as one JSON object on the last line.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const [gatewayUrl, eventFile] = process.argv.slice(2);
const apiKey = process.env.LINTAS_API_KEY;
const eventType = "dukcapil.kematian_dicatat.v1";
const base = JSON.parse(readFileSync(eventFile, "utf8"));

async function post(path, body, contentType, extraHeaders = {}) {
  const response = await fetch(gatewayUrl + path, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${apiKey}`,
      "Content-Type": contentType,
      ...extraHeaders,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const answer = await response.json();
  if (response.status !== 202) {
    throw new Error(`${path}: ${response.status} ${JSON.stringify(answer)}`);
  }
  return { answer, replayed: response.headers.get("idempotent-replayed") === "true" };
}

// Citizen i: the same event with its own certificate number.
const event = (i) => ({ ...base, nomor_akta_kematian: `3273-KM-10062025-${String(i).padStart(4, "0")}` });

const accepted = [];
const single = await post(`/v1/events/${eventType}`, event(1), "application/json");
accepted.push(single.answer.id);

const key = randomUUID();
const batch = Array.from({ length: 5 }, (_, i) => ({ event_type: eventType, data: event(10 + i) }));
const first = await post("/v1/events:batch", batch, "application/json", { "Idempotency-Key": key });
accepted.push(...first.answer.events.map((e) => e.id));
const retry = await post("/v1/events:batch", batch, "application/json", { "Idempotency-Key": key });
if (!retry.replayed || JSON.stringify(retry.answer) !== JSON.stringify(first.answer)) {
  throw new Error("the retry did not return the first answer");
}

const ndjson = [20, 21].map((i) => JSON.stringify({ event_type: eventType, data: event(i) })).join("\n");
const nd = await post("/v1/events:batch", ndjson, "application/x-ndjson");
accepted.push(...nd.answer.events.map((e) => e.id));

const cloudEvent = {
  specversion: "1.0",
  id: randomUUID(),
  source: "/opd/dukcapil/siak",
  type: eventType,
  time: new Date().toISOString(),
  datacontenttype: "application/json",
  data: event(30),
};
const ce = await post("/v1/events", cloudEvent, "application/cloudevents+json");
accepted.push(ce.answer.id);

console.log(JSON.stringify({ accepted, statuses: [single.answer.status, ce.answer.status] }));
