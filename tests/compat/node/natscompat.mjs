// natscompat.mjs: drive a NATS server with the official JavaScript clients
// (@nats-io/transport-node, @nats-io/jetstream, @nats-io/kv; versions pinned in package.json)
// and print one JSON report for a scenario on stdout.
//
// It owns only client-side observations. It must print only values the protocol fixes (no
// timestamps, inboxes, server ids or timing-dependent counts) so tests/compat/test_node_client.py
// can compare the reports of pyjetstream and nats-server exactly.
// Usage: node natscompat.mjs <url> <core|js|consume|fetch|push|heartbeat|restart|kv|newer>

import { connect, headers } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";

const enc = new TextEncoder();

function fail(msg) {
  process.stderr.write(`natscompat.mjs: ${msg}\n`);
  process.exit(1);
}

// An error reduced to what the server decided: API code and text, or the client's error class.
function errView(e) {
  if (!e) return null;
  if (typeof e.apiError === "function") {
    const a = e.apiError();
    return { api: { code: a.code, err_code: a.err_code, description: a.description } };
  }
  return { name: e.name, message: e.message };
}

async function settle(p) {
  try {
    return { ok: await p };
  } catch (e) {
    return { error: errView(e) };
  }
}

function hdrView(h) {
  if (!h) return null;
  const out = {};
  for (const k of [...h.keys()].sort()) out[k] = h.values(k);
  return out;
}

async function waitFor(what, ms, cond) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function withTimeout(p, ms, what) {
  let t;
  const timer = new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}

function stateView(s) {
  return { messages: s.messages, bytes: s.bytes, first_seq: s.first_seq, last_seq: s.last_seq,
    consumer_count: s.consumer_count, num_subjects: s.num_subjects ?? 0 };
}

function consumerView(ci) {
  const c = ci.config;
  return {
    name: ci.name, stream: ci.stream_name,
    config: { durable_name: c.durable_name, ack_policy: c.ack_policy, deliver_policy: c.deliver_policy,
      filter_subject: c.filter_subject ?? null, max_ack_pending: c.max_ack_pending, ack_wait: c.ack_wait,
      max_deliver: c.max_deliver, replay_policy: c.replay_policy },
    delivered: { consumer_seq: ci.delivered.consumer_seq, stream_seq: ci.delivered.stream_seq },
    ack_floor: { consumer_seq: ci.ack_floor.consumer_seq, stream_seq: ci.ack_floor.stream_seq },
    num_ack_pending: ci.num_ack_pending, num_redelivered: ci.num_redelivered, num_pending: ci.num_pending,
    num_waiting: ci.num_waiting,
  };
}

function msgView(m) {
  return { subject: m.subject, data: m.string(), stream_seq: m.info.streamSequence,
    delivery_seq: m.info.deliverySequence, delivered: m.info.deliveryCount, pending: m.info.pending };
}

// ------------------------------------------------------------------ core NATS

async function core(url) {
  const res = {};
  const a = await connect({ servers: url, name: "compat-node-a" });
  const b = await connect({ servers: url, name: "compat-node-b" });
  res.server_headers = a.info.headers === true;
  res.max_payload = a.info.max_payload;

  const got = [];
  const sub = a.subscribe("ncompat.>", { max: 3 });
  const done = (async () => {
    for await (const m of sub) {
      got.push({ subject: m.subject, reply: m.reply ?? "", data: m.string(), headers: hdrView(m.headers) });
    }
  })();
  await a.flush();
  b.publish("ncompat.one", "plain");
  const h = headers();
  h.append("X-Multi", "a");
  h.append("X-Multi", "b");
  h.set("X-One", "1");
  b.publish("ncompat.two.deep", enc.encode("with headers"), { headers: h, reply: "ncompat.reply" });
  const ho = headers();
  ho.set("Only", "headers");
  b.publish("ncompat.three", new Uint8Array(0), { headers: ho });
  await withTimeout(done, 5000, "core messages");
  res.messages = got;
  res.sub_closed_after_max = sub.isClosed();

  // queue group: each message to one member
  const seen = new Map();
  const q = [a, a, b].map((c) => c.subscribe("ncompat.q", { queue: "workers", callback: (_e, m) => {
    seen.set(m.string(), (seen.get(m.string()) ?? 0) + 1);
  } }));
  await a.flush();
  await b.flush();
  for (let i = 0; i < 60; i++) b.publish("ncompat.q", `${i}`);
  await b.flush();
  await waitFor("queue deliveries", 5000, () => [...seen.values()].reduce((x, y) => x + y, 0) >= 60);
  await a.flush();
  res.queue = { distinct: seen.size, deliveries: [...seen.values()].reduce((x, y) => x + y, 0),
    duplicates: [...seen.values()].filter((n) => n > 1).length };
  q.forEach((s) => s.unsubscribe());

  // request-reply with headers
  a.subscribe("ncompat.svc", { callback: (_e, m) => {
    const rh = headers();
    rh.set("X-Echo", m.headers?.get("X-Req") ?? "");
    m.respond(m.string().toUpperCase(), { headers: rh });
  } });
  await a.flush();
  const rq = headers();
  rq.set("X-Req", "hello-header");
  const r = await b.request("ncompat.svc", "ping", { timeout: 5000, headers: rq });
  res.request = { data: r.string(), headers: hdrView(r.headers) };
  const r2 = await b.request("ncompat.svc", "no mux", { timeout: 5000, noMux: true });
  res.request_nomux = r2.string();
  res.no_responders = errView(await settle(b.request("ncompat.nobody", "x", { timeout: 5000 })).then((s) => s.error && s.error));
  res.rtt_ok = typeof (await b.rtt()) === "number";
  await a.drain();
  await b.drain();
  return res;
}

// ------------------------------------------------------------------ JetStream publish

async function js(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  const si = await jsm.streams.add({ name: "NCOMPAT", subjects: ["njs.>"], duplicate_window: 60e9 });
  res.created = { name: si.config.name, subjects: si.config.subjects, retention: si.config.retention,
    storage: si.config.storage, discard: si.config.discard, max_msgs: si.config.max_msgs,
    duplicate_window: si.config.duplicate_window, num_replicas: si.config.num_replicas, state: stateView(si.state) };
  res.add_conflict = (await settle(jsm.streams.add({ name: "NCOMPAT", subjects: ["other.>"] }))).error;

  const acks = [];
  const pa = async (p) => {
    const s = await settle(p);
    return s.error ? s : { stream: s.ok.stream, seq: s.ok.seq, duplicate: s.ok.duplicate };
  };
  for (let i = 1; i <= 3; i++) acks.push(await pa(j.publish("njs.a", `a${i}`)));
  const h = headers();
  h.set("X-Key", "v");
  acks.push(await pa(j.publish("njs.h", "has header", { headers: h })));
  acks.push(await pa(j.publish("njs.d", "one", { msgID: "id-1" })));
  acks.push(await pa(j.publish("njs.d", "one again", { msgID: "id-1" })));
  acks.push(await pa(j.publish("njs.e", "x", { expect: { lastSequence: 1 } })));
  acks.push(await pa(j.publish("njs.e", "x", { expect: { lastSequence: 5 } })));
  acks.push(await pa(j.publish("njs.e", "x", { expect: { streamName: "NOPE" } })));
  acks.push(await pa(j.publish("njs.a", "x", { expect: { lastSubjectSequence: 3 } })));
  acks.push(await pa(j.publish("njs.a", "a4", { expect: { lastSubjectSequence: 3 } })));
  acks.push(await pa(j.publish("njs.f", "x", { expect: { lastMsgID: "id-1" } })));
  res.acks = acks;
  const ns = await settle(j.publish("nostream.here", "x", { timeout: 2000 }));
  res.publish_without_stream = ns.error;

  // many in flight at once
  const ps = [];
  for (let i = 0; i < 200; i++) ps.push(j.publish(`njs.many.${i % 7}`, `m-${i}`));
  const seqs = (await Promise.all(ps)).map((x) => x.seq).sort((x, y) => x - y);
  res.concurrent = { acked: seqs.length, first: seqs[0], last: seqs[seqs.length - 1],
    contiguous: seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1) };

  const g = await jsm.streams.getMessage("NCOMPAT", { seq: 4 });
  res.get_4 = { subject: g.subject, seq: g.seq, data: g.string(), headers: hdrView(g.header) };
  const last = await jsm.streams.getMessage("NCOMPAT", { last_by_subj: "njs.a" });
  res.get_last_a = { subject: last.subject, seq: last.seq, data: last.string() };
  const gm = await settle(jsm.streams.getMessage("NCOMPAT", { seq: 100000 }));
  res.get_missing = gm.error ?? gm.ok;
  res.delete_msg = (await settle(jsm.streams.deleteMessage("NCOMPAT", 2))).ok;
  res.purge_filtered = (await settle(jsm.streams.purge("NCOMPAT", { filter: "njs.many.3" }))).ok;
  const info = await jsm.streams.info("NCOMPAT");
  res.after_purge = stateView(info.state);
  const names = [];
  for await (const n of jsm.streams.names()) names.push(n);
  res.names = names.sort();
  res.info_missing = (await settle(jsm.streams.info("MISSING"))).error;
  res.find = (await settle(jsm.streams.find("njs.many.1"))).ok ?? null;
  res.find_missing = (await settle(jsm.streams.find("nowhere.x"))).error;
  const up = await settle(jsm.streams.update("NCOMPAT", { max_msgs: 50 }));
  res.update_max_msgs = up.error ?? stateView(up.ok.state);
  res.update_storage = (await settle(jsm.streams.update("NCOMPAT", { storage: "memory" }))).error ?? "no error";
  res.deleted = await jsm.streams.delete("NCOMPAT");

  // direct get on a stream that allows it (what the KV client uses)
  await jsm.streams.add({ name: "NDIRECT", subjects: ["ndirect.>"], allow_direct: true });
  for (let i = 1; i <= 3; i++) await j.publish(`ndirect.${i % 2}`, `d${i}`);
  const dv = (m) => (m ? { subject: m.subject, seq: m.seq, data: m.string() } : null);
  res.direct_seq_2 = dv(await jsm.direct.getMessage("NDIRECT", { seq: 2 }));
  res.direct_last_1 = dv(await jsm.direct.getMessage("NDIRECT", { last_by_subj: "ndirect.1" }));
  res.direct_next_0 = dv(await jsm.direct.getMessage("NDIRECT", { next_by_subj: "ndirect.0", seq: 1 }));
  const dm = await settle(jsm.direct.getMessage("NDIRECT", { seq: 99 }));
  res.direct_missing = dm.error ?? dm.ok;
  const acct = await jsm.getAccountInfo();
  res.account = { streams: acct.streams, consumers: acct.consumers };
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ consumer API: consume()

async function consume(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  await jsm.streams.add({ name: "NCONS", subjects: ["ncons.>"] });
  for (let i = 0; i < 50; i++) await j.publish(`ncons.${i % 2 ? "odd" : "even"}`, `c${i}`);
  const ci = await jsm.consumers.add("NCONS", { durable_name: "worker", ack_policy: AckPolicy.Explicit,
    filter_subject: "ncons.even", max_ack_pending: 10, ack_wait: 30e9 });
  res.created = consumerView(ci);

  const c = await j.consumers.get("NCONS", "worker");
  const got = [];
  let nakked = false;
  const iter = await c.consume({ max_messages: 7 });
  const loop = (async () => {
    for await (const m of iter) {
      got.push(msgView(m));
      if (m.string() === "c8" && !nakked) {
        nakked = true;
        m.nak();
      } else {
        m.ack();
      }
      if (got.length >= 26) break;
    }
  })();
  await withTimeout(loop, 15000, "consume");
  await waitFor("acks", 10000, async () => (await c.info()).num_ack_pending === 0);
  res.delivery_seqs = got.map((g) => g.delivery_seq).sort((x, y) => x - y);
  // where the redelivery lands depends on when the nak arrived: report first deliveries in
  // order and the redelivery on its own
  res.first = got.filter((g) => g.delivered === 1).map(({ delivery_seq, ...rest }) => rest);
  res.redelivered = got.filter((g) => g.delivered > 1).map((g) => [g.data, g.stream_seq, g.delivered]);
  res.after = consumerView(await c.info());
  const upd = await settle(jsm.consumers.update("NCONS", "worker", { max_ack_pending: 20, description: "changed" }));
  res.update = upd.error ?? { max_ack_pending: upd.ok.config.max_ack_pending, description: upd.ok.config.description };
  const bad = await settle(jsm.consumers.update("NCONS", "worker", { ack_policy: AckPolicy.None }));
  res.update_ack_policy = bad.error ?? "no error";

  // ordered consumer over the whole stream, consumed through the same API
  const oc = await j.consumers.get("NCONS");
  const seen = [];
  const oiter = await oc.consume();
  await withTimeout((async () => {
    for await (const m of oiter) {
      seen.push([m.info.streamSequence, m.info.deliverySequence]);
      if (seen.length >= 50) break;
    }
  })(), 15000, "ordered consume");
  res.ordered = { count: seen.length, in_order: seen.every(([s, d], i) => s === i + 1 && d === i + 1) };
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ consumer API: fetch() / next()

async function fetch(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  await jsm.streams.add({ name: "NFETCH", subjects: ["nfetch.>"] });
  for (let i = 1; i <= 10; i++) await j.publish(`nfetch.${i % 3}`, `f${i}`);
  await jsm.consumers.add("NFETCH", { durable_name: "puller", ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All });
  const c = await j.consumers.get("NFETCH", "puller");

  const batch = async (opts, act) => {
    const out = [];
    const it = await c.fetch(opts);
    for await (const m of it) {
      out.push(msgView(m));
      await act(m, out.length);
    }
    return out;
  };
  res.fetch_4 = await batch({ max_messages: 4, expires: 5000 }, (m) => m.ackAck());
  // six stored, seven due: the nak'd first one comes back inside the same request
  res.fetch_7 = await batch({ max_messages: 7, expires: 5000 }, async (m, i) => {
    if (i === 1) m.nak();
    else if (i === 2) m.term();
    else {
      if (i === 3) m.working();
      await m.ackAck();
    }
  });
  res.fetch_empty = await batch({ max_messages: 3, expires: 1000 }, (m) => m.ackAck());
  const waiting = c.next({ expires: 5000 });
  setTimeout(() => j.publish("nfetch.late", "late"), 100);
  const nm = await waiting;
  res.next_waiting = nm ? msgView(nm) : null;
  if (nm) await nm.ackAck();
  res.next_empty = await c.next({ expires: 1000 });
  res.final = consumerView(await c.info());
  res.get_missing = (await settle(j.consumers.get("NFETCH", "nope"))).error;
  const names = [];
  for await (const ci of jsm.consumers.list("NFETCH")) names.push(ci.name);
  res.consumers = names;
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ push consumer: flow control, heartbeats

async function push(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  await jsm.streams.add({ name: "NPUSH", subjects: ["npush.>"] });
  const ci = await jsm.consumers.add("NPUSH", { durable_name: "pusher", deliver_subject: "npushdeliver",
    ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, flow_control: true,
    idle_heartbeat: 1000e6, max_ack_pending: 50 });
  res.created = consumerView(ci);
  const c = await j.consumers.getPushConsumer("NPUSH", "pusher");
  let received = 0;
  let inOrder = true;
  // a callback keeps the subscription open after the last message, so heartbeats go on
  const iter = await c.consume({ callback: (m) => {
    received++;
    if (m.info.streamSequence !== received) inOrder = false;
    m.ack();
  } });
  const events = { flow_control: 0, heartbeats_missed: 0 };
  let hbAfterAll = null;
  (async () => {
    for await (const st of iter.status()) {
      if (st.type === "flow_control") events.flow_control++;
      if (st.type === "heartbeats_missed") events.heartbeats_missed++;
      if (st.type === "heartbeat" && received === 300) {
        hbAfterAll = { lastStreamSequence: st.lastStreamSequence, lastConsumerSequence: st.lastConsumerSequence };
      }
    }
  })();
  // enough bytes that the server must ask for flow control several times
  const payload = new Uint8Array(16 * 1024).fill(120);
  const pubs = [];
  for (let i = 0; i < 300; i++) pubs.push(j.publish(`npush.${i}`, payload));
  await Promise.all(pubs);
  await waitFor("push deliveries", 30000, () => received >= 300);
  await waitFor("heartbeat after all data", 10000, () => hbAfterAll !== null);
  res.received = received;
  res.in_order = inOrder;
  res.flow_control_seen = events.flow_control > 0;
  res.heartbeats_missed = events.heartbeats_missed;
  res.heartbeat_after_all = hbAfterAll;
  await waitFor("acks", 10000, async () => (await jsm.consumers.info("NPUSH", "pusher")).num_ack_pending === 0);
  const after = await jsm.consumers.info("NPUSH", "pusher");
  res.after = { ack_floor: after.ack_floor.stream_seq, delivered: after.delivered.stream_seq,
    num_ack_pending: after.num_ack_pending };
  iter.stop();
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ pull consume(): idle heartbeats

async function heartbeat(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  await jsm.streams.add({ name: "NHB", subjects: ["nhb.>"] });
  await jsm.consumers.add("NHB", { durable_name: "idle", ack_policy: AckPolicy.Explicit });
  const c = await j.consumers.get("NHB", "idle");
  // nothing stored: the open pull requests must be kept alive by the server's heartbeats
  const iter = await c.consume({ max_messages: 10, expires: 3000, idle_heartbeat: 1000 });
  const events = { heartbeat: 0, heartbeats_missed: 0 };
  (async () => {
    for await (const st of iter.status()) {
      if (st.type in events) events[st.type]++;
    }
  })();
  const got = [];
  const loop = (async () => {
    for await (const m of iter) {
      got.push(m.string());
      m.ack();
      if (got.length >= 1) break;
    }
  })();
  await waitFor("pull heartbeats", 10000, () => events.heartbeat >= 2);
  await j.publish("nhb.x", "after idle");
  await withTimeout(loop, 10000, "message after idle");
  res.heartbeats_seen = events.heartbeat >= 2;
  res.heartbeats_missed = events.heartbeats_missed;
  res.got = got;
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ consume() across a server restart

// Prints RESTART and waits for a line on stdin; the test restarts the server (same port and
// store) in between. The same consume() iterator must carry on afterwards.
async function restart(url) {
  const res = {};
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  await jsm.streams.add({ name: "NRESTART", subjects: ["nrestart.>"] });
  await jsm.consumers.add("NRESTART", { durable_name: "survivor", ack_policy: AckPolicy.Explicit });
  const c = await j.consumers.get("NRESTART", "survivor");
  const got = [];
  const iter = await c.consume({ max_messages: 5, expires: 2000, idle_heartbeat: 500 });
  (async () => {
    for await (const m of iter) {
      got.push(`${m.string()}#${m.info.deliveryCount}`);
      m.ack();
    }
  })();
  for (let i = 0; i < 10; i++) await j.publish("nrestart.x", `r${String(i).padStart(2, "0")}`);
  await waitFor("before restart", 10000, () => got.length >= 10);
  await waitFor("acks before restart", 10000, async () => (await c.info()).num_ack_pending === 0);

  let reconnected = false;
  (async () => {
    for await (const st of nc.status()) if (st.type === "reconnect") reconnected = true;
  })();
  process.stdout.write("RESTART\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  await waitFor("reconnect", 20000, () => reconnected);
  for (let i = 10; i < 20; ) {
    try {
      await j.publish("nrestart.x", `r${i}`, { timeout: 1000 });
      i++;
    } catch {
      await new Promise((r) => setTimeout(r, 50)); // JetStream may still be starting
    }
  }
  await waitFor("after restart", 20000, () => got.length >= 20);
  await waitFor("acks after restart", 10000, async () => (await c.info()).num_ack_pending === 0);
  res.got = got.sort();
  const ci = await c.info();
  res.final = { ack_floor: ci.ack_floor.stream_seq, num_pending: ci.num_pending, num_ack_pending: ci.num_ack_pending };
  iter.stop();
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ KV

function entryView(e) {
  if (!e) return null;
  return { bucket: e.bucket, key: e.key, value: e.string(), revision: e.revision, operation: e.operation };
}

async function kv(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const kvm = new Kvm(nc);
  const b = await kvm.create("ncompat", { history: 5 });
  const live = [];
  const w = await b.watch();
  const watching = (async () => {
    for await (const e of w) {
      live.push(entryView(e));
      if (live.length >= 7) break;
    }
  })();
  const writes = {};
  writes.put_a1 = await b.put("a", "1");
  writes.put_bc = await b.put("b.c", "bc");
  writes.put_a2 = await b.put("a", "2");
  writes.update_ok = await settle(b.update("a", "3", 3));
  writes.update_stale = await settle(b.update("a", "4", 3));
  writes.create_existing = await settle(b.create("a", "5"));
  writes.create_new = await settle(b.create("new", "n"));
  res.writes = writes;
  res.get_a = entryView(await b.get("a"));
  res.get_a_rev1 = entryView(await b.get("a", { revision: 1 }));
  res.get_missing = entryView(await b.get("nope"));
  await b.delete("b.c");
  res.get_deleted = entryView(await b.get("b.c"));
  res.create_after_delete = await settle(b.create("b.c", "again"));
  const keys = [];
  for await (const k of await b.keys()) keys.push(k);
  res.keys = keys.sort();
  const hist = [];
  for await (const e of await b.history({ key: "a" })) hist.push(entryView(e));
  res.history_a = hist;
  await withTimeout(watching, 5000, "watch");
  res.watch_live = live;

  const initial = [];
  const kw = await b.watch({ key: "a" });
  const next = (async () => {
    for await (const e of kw) {
      initial.push(entryView(e));
      if (initial.length >= 2) break;
    }
  })();
  await waitFor("watch a initial", 5000, () => initial.length >= 1);
  await b.put("a", "after watch");
  await withTimeout(next, 5000, "watch a");
  res.watch_a = initial;

  await b.purge("a");
  const ph = [];
  for await (const e of await b.history({ key: "a" })) ph.push(entryView(e));
  res.history_a_after_purge = ph;
  // watch options; a sentinel put ends each initial replay (no end marker in this client)
  const replay = async (opts, sentinelKey) => {
    const out = [];
    const it = await b.watch(opts);
    const done = (async () => {
      for await (const e of it) {
        if (e.key === sentinelKey) break;
        out.push(entryView(e));
      }
    })();
    await b.put(sentinelKey, "end");
    await withTimeout(done, 5000, `watch ${JSON.stringify(opts)}`);
    await b.purge(sentinelKey);
    return out;
  };
  res.watch_history = await replay({ include: KvWatchInclude.AllHistory }, "zz.end1");
  res.watch_ignore_deletes = await replay({ key: "b.*", ignoreDeletes: true }, "b.end2");
  res.watch_updates_only = await replay({ include: KvWatchInclude.UpdatesOnly }, "zz.end3");
  await b.purgeDeletes(-1);
  const left = [];
  for await (const k of await b.keys()) left.push(k);
  res.keys_after_purge_deletes = left.sort();

  const st = await b.status();
  res.status = { bucket: st.bucket, values: st.values, history: st.history, ttl: st.ttl,
    backingStore: st.backingStore };
  const bs = [];
  for await (const s of kvm.list()) bs.push(s.bucket);
  res.buckets = bs;
  res.destroyed = await b.destroy();
  // open() binds lazily; the first read shows whether the bucket is really gone
  const gone = await settle(kvm.open("ncompat").then((o) => o.get("a")));
  res.read_destroyed = gone.error ?? gone.ok;
  await nc.drain();
  return res;
}

// ------------------------------------------------------------------ features the client gates on the server's version

// The client switches these on by the version in INFO: several filter subjects and metadata
// (2.10), batch direct get and priority groups (2.11). Against 2.9.10 it refuses them itself.
async function newer(url) {
  const res = {};
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const j = jetstream(nc);
  const add = await settle(jsm.streams.add({ name: "NNEW", subjects: ["nnew.>"], allow_direct: true,
    metadata: { owner: "compat" } }));
  res.stream_metadata_keys = add.ok ? Object.keys(add.ok.config.metadata ?? {}).sort() : add.error;
  res.stream_req_level = add.ok ? add.ok.config.metadata?.["_nats.req.level"] ?? null : null;
  for (let i = 1; i <= 6; i++) await settle(j.publish(`nnew.${"abc"[i % 3]}.${i}`, `n${i}`));

  const subjects = async (c, opts) => {
    const out = [];
    for await (const m of await c.fetch(opts)) {
      out.push([m.subject, m.info.streamSequence]);
      await m.ackAck();
    }
    return out;
  };
  const multi = await settle(jsm.consumers.add("NNEW", { durable_name: "multi", ack_policy: AckPolicy.Explicit,
    filter_subjects: ["nnew.a.>", "nnew.b.>"] }));
  res.multi_filter = multi.ok ? { filter_subjects: multi.ok.config.filter_subjects, num_pending: multi.ok.num_pending }
    : multi.error;
  if (multi.ok) {
    res.multi_fetched = await subjects(await j.consumers.get("NNEW", "multi"), { max_messages: 10, expires: 2000 });
  }

  const direct = async (op) => {
    const r = await settle((async () => {
      const out = [];
      for await (const m of await op()) out.push({ subject: m.subject, seq: m.seq, data: m.string() });
      return out;
    })());
    return r.error ?? r.ok;
  };
  res.direct_batch = await direct(() => jsm.direct.getBatch("NNEW", { seq: 2, batch: 3 }));
  res.direct_multi_last = await direct(() => jsm.direct.getLastMessagesFor("NNEW", { multi_last: ["nnew.a.>", "nnew.c.>"] }));

  const prio = await settle(jsm.consumers.add("NNEW", { durable_name: "prio", ack_policy: AckPolicy.Explicit,
    priority_policy: "overflow", priority_groups: ["g"] }));
  res.priority_consumer = prio.ok ? { priority_policy: prio.ok.config.priority_policy,
    priority_groups: prio.ok.config.priority_groups } : prio.error;
  if (prio.ok) {
    const c = await j.consumers.get("NNEW", "prio");
    res.priority_fetched = await subjects(c, { max_messages: 2, expires: 2000, group: "g", min_pending: 1 });
  }
  await nc.drain();
  return res;
}

const scenarios = { core, js, consume, fetch, push, heartbeat, restart, kv, newer };
const [url, name] = process.argv.slice(2);
if (!url || !scenarios[name]) fail(`usage: natscompat.mjs <url> <${Object.keys(scenarios).join("|")}>`);
try {
  const out = await scenarios[name](url);
  process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
  process.exit(0);
} catch (e) {
  fail(e?.stack ?? String(e));
}
