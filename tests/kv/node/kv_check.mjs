// KV operations through the Node.js client (@nats-io/kv). Prints one JSON line of results;
// the pytest wrapper (tests/kv/test_node_kv.py) asserts on it.
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";

const url = process.argv[2];
const nc = await connect({ servers: url });
const out = {};
try {
  const kvm = new Kvm(nc);
  const kv = await kvm.create("nodebkt", { history: 5, storage: "memory" });
  const r1 = await kv.put("a", "1");
  const r2 = await kv.put("a", "2");
  out.revisions = [r1, r2];
  out.get = (await kv.get("a")).string();
  out.getRev = (await kv.get("a", { revision: r1 })).string();
  const rc = await kv.create("b", "new");
  try { await kv.create("b", "again"); out.createAgain = "ok"; } catch (e) { out.createAgain = "error"; }
  const ru = await kv.update("b", "upd", rc);
  try { await kv.update("b", "stale", rc); out.updateStale = "ok"; } catch (e) { out.updateStale = "error"; }
  out.updated = ru > rc;
  const hist = [];
  for await (const e of await kv.history({ key: "a" })) hist.push(e.string());
  out.history = hist;
  await kv.delete("a");
  out.afterDelete = (await kv.get("a"))?.operation ?? null;
  const keys = [];
  for await (const k of await kv.keys()) keys.push(k);
  out.keys = keys.sort();
  await kv.purge("b");
  out.afterPurge = (await kv.get("b"))?.operation ?? null;
  const w = await kv.watch({ key: "c" });
  await kv.put("c", "watched");
  for await (const e of w) { out.watched = [e.key, e.string(), e.operation]; break; }
  const st = await kv.status();
  out.status = { bucket: st.bucket, history: st.history, values: st.values };
  await kv.destroy();
  out.destroyed = true;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await nc.close();
}
console.log(JSON.stringify(out));
