// Command natscompat drives a NATS server with the nats.go client (1.22, as packaged by Debian)
// and prints one JSON document per scenario on stdout.
//
// It owns only client-side behaviour: what nats.go sends and what it makes of the answers.
// It must print only values that are fixed by the protocol (no timestamps, random inboxes,
// server ids or timing-dependent counts) so that the output of two servers can be compared
// byte for byte by tests/compat/test_go_client.py. Usage:
//
//	natscompat -url nats://127.0.0.1:4222 <scenario>
//
// Scenarios: core js push flow pull subs limits load kv obj restart rebind auth token tls (the last three need
// -user/-pass, -token or -ca, matching how the test started the server).
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// creds holds what the auth, token and tls scenarios need to know about the server.
var creds struct{ user, pass, token, ca string }

// result collects a scenario's observations in insertion order of keys is not needed:
// encoding/json sorts map keys, which keeps the output canonical.
type result map[string]interface{}

func must(err error, what string) {
	if err != nil {
		fail(fmt.Errorf("%s: %w", what, err))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "natscompat:", err)
	os.Exit(1)
}

func errText(err error) interface{} {
	if err == nil {
		return nil
	}
	return err.Error()
}

// apiErr reduces a JetStream API error to the fields the server decides.
func apiErr(err error) interface{} {
	if err == nil {
		return nil
	}
	var ae *nats.APIError
	if errors.As(err, &ae) {
		return result{"code": ae.Code, "err_code": int(ae.ErrorCode), "description": ae.Description}
	}
	return err.Error()
}

func headerMap(h nats.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := map[string][]string{}
	for k, v := range h {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes; real servers need real time.
func waitFor(what string, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("timed out waiting for %s", what))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connect(url, name string) *nats.Conn {
	nc, err := nats.Connect(url, nats.Name(name), nats.Timeout(5*time.Second),
		nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			asyncErrs.add(err)
		}))
	must(err, "connect")
	return nc
}

// asyncErrs records what the client reports asynchronously (slow consumer, missed heartbeats).
var asyncErrs = &errList{}

type errList struct {
	mu   sync.Mutex
	errs []string
}

func (e *errList) add(err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err.Error())
	e.mu.Unlock()
}

func (e *errList) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string{}, e.errs...)
}

func main() {
	url := flag.String("url", nats.DefaultURL, "server URL")
	flag.StringVar(&creds.user, "user", "", "user the server requires (auth scenario)")
	flag.StringVar(&creds.pass, "pass", "", "password the server requires (auth scenario)")
	flag.StringVar(&creds.token, "token", "", "token the server requires (token scenario)")
	flag.StringVar(&creds.ca, "ca", "", "CA file for the server's certificate (tls scenario)")
	flag.Parse()
	if flag.NArg() != 1 {
		fail(errors.New("need one scenario: core, js, push, flow, pull, subs, limits, load, kv, obj, restart, rebind, auth, token or tls"))
	}
	scenarios := map[string]func(string) result{
		"core": scenarioCore, "js": scenarioJS, "push": scenarioPush,
		"flow": scenarioFlow, "pull": scenarioPull, "kv": scenarioKV, "obj": scenarioObj,
		"restart": scenarioRestart, "rebind": scenarioRebind, "subs": scenarioSubs, "limits": scenarioLimits, "load": scenarioLoad, "auth": scenarioAuth, "token": scenarioToken, "tls": scenarioTLS,
	}
	run, ok := scenarios[flag.Arg(0)]
	if !ok {
		fail(fmt.Errorf("unknown scenario %q", flag.Arg(0)))
	}
	out := run(*url)
	out["async_errors"] = asyncErrs.list()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	must(enc.Encode(out), "encode")
}

// ---------------------------------------------------------------- core NATS

func scenarioCore(url string) result {
	res := result{}
	sub := connect(url, "compat-sub")
	defer sub.Close()
	pub := connect(url, "compat-pub")
	defer pub.Close()
	res["headers_supported"] = pub.HeadersSupported()
	res["max_payload"] = pub.MaxPayload()

	// Plain and header-carrying messages through a full wildcard and a token wildcard.
	all, err := sub.SubscribeSync("compat.core.>")
	must(err, "sub >")
	tok, err := sub.SubscribeSync("compat.core.*.x")
	must(err, "sub *")
	must(sub.Flush(), "flush sub")
	must(pub.Publish("compat.core.a.x", []byte("plain")), "pub")
	m := nats.NewMsg("compat.core.b.y")
	m.Header.Set("X-One", "1")
	m.Header.Add("X-Multi", "a")
	m.Header.Add("X-Multi", "b")
	m.Data = []byte("with headers")
	m.Reply = "compat.reply.here"
	must(pub.PublishMsg(m), "pub hdr")
	hm := nats.NewMsg("compat.core.c.x")
	hm.Header.Set("Only", "headers")
	must(pub.PublishMsg(hm), "pub hdr empty")
	must(pub.Flush(), "flush pub")
	var got []result
	for i := 0; i < 3; i++ {
		msg, err := all.NextMsg(5 * time.Second)
		must(err, "next >")
		got = append(got, result{"subject": msg.Subject, "reply": msg.Reply,
			"data": string(msg.Data), "header": headerMap(msg.Header)})
	}
	res["full_wildcard"] = got
	var tokGot []string
	for i := 0; i < 2; i++ {
		msg, err := tok.NextMsg(5 * time.Second)
		must(err, "next *")
		tokGot = append(tokGot, msg.Subject)
	}
	res["token_wildcard"] = tokGot

	// Queue group: every message reaches exactly one member.
	var mu sync.Mutex
	seen := map[string]int{}
	members := map[string]int{}
	other := connect(url, "compat-q2")
	defer other.Close()
	for i, c := range []*nats.Conn{sub, sub, other} {
		member := fmt.Sprintf("m%d", i)
		_, err := c.QueueSubscribe("compat.q", "workers", func(msg *nats.Msg) {
			mu.Lock()
			seen[string(msg.Data)]++
			members[member]++
			mu.Unlock()
		})
		must(err, "queue sub")
		must(c.Flush(), "flush q")
	}
	const nq = 60
	for i := 0; i < nq; i++ {
		must(pub.Publish("compat.q", []byte(fmt.Sprint(i))), "pub q")
	}
	must(pub.Flush(), "flush q pub")
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range seen {
			n += c
		}
		return n
	}
	waitFor("queue deliveries", 5*time.Second, func() bool { return total() >= nq })
	must(sub.Flush(), "flush after q")
	must(other.Flush(), "flush after q")
	deliveries := total()
	mu.Lock()
	dups := 0
	for _, c := range seen {
		if c > 1 {
			dups++
		}
	}
	res["queue"] = result{"distinct": len(seen), "deliveries": deliveries, "duplicates": dups}
	mu.Unlock()

	// Request-reply with headers, via the new-style (muxed inbox) request.
	_, err = sub.Subscribe("compat.svc", func(req *nats.Msg) {
		resp := nats.NewMsg(req.Reply)
		resp.Header.Set("X-Echo", req.Header.Get("X-Req"))
		resp.Data = []byte(strings.ToUpper(string(req.Data)))
		_ = req.RespondMsg(resp)
	})
	must(err, "svc sub")
	must(sub.Flush(), "flush svc")
	req := nats.NewMsg("compat.svc")
	req.Header.Set("X-Req", "hello-header")
	req.Data = []byte("ping")
	resp, err := pub.RequestMsg(req, 5*time.Second)
	must(err, "request")
	res["request"] = result{"data": string(resp.Data), "header": headerMap(resp.Header)}
	// The pre-2.2 request style: one subscription per request on a fresh inbox.
	oldNC, err := nats.Connect(url, nats.UseOldRequestStyle(), nats.NoReconnect())
	must(err, "connect old style")
	defer oldNC.Close()
	oldResp, err := oldNC.Request("compat.svc", []byte("old style"), 5*time.Second)
	must(err, "old request")
	res["old_request"] = string(oldResp.Data)

	// No responders: the server answers a 503 status, which nats.go turns into an error.
	_, err = pub.Request("compat.nobody", []byte("x"), 5*time.Second)
	res["no_responders"] = errText(err)

	// Auto-unsubscribe after two messages.
	au, err := sub.SubscribeSync("compat.auto")
	must(err, "auto sub")
	must(au.AutoUnsubscribe(2), "autounsub")
	must(sub.Flush(), "flush auto")
	for i := 0; i < 5; i++ {
		must(pub.Publish("compat.auto", []byte(fmt.Sprint(i))), "pub auto")
	}
	must(pub.Flush(), "flush auto pub")
	n := 0
	for {
		if _, err := au.NextMsg(300 * time.Millisecond); err != nil {
			res["auto_unsub_end"] = errText(err)
			break
		}
		n++
	}
	res["auto_unsub_received"] = n
	res["rtt_ok"] = func() bool { _, err := pub.RTT(); return err == nil }()

	// The largest payload the server allows, and one byte more (refused by the client).
	big, err := sub.SubscribeSync("compat.big")
	must(err, "big sub")
	must(sub.Flush(), "flush big")
	maxp := int(pub.MaxPayload())
	must(pub.Publish("compat.big", bytes.Repeat([]byte("b"), maxp)), "publish max payload")
	bm, err := big.NextMsg(5 * time.Second)
	must(err, "big next")
	res["max_payload_roundtrip"] = len(bm.Data) == maxp
	res["over_max_payload"] = errText(pub.Publish("compat.big", bytes.Repeat([]byte("b"), maxp+1)))

	// Drain: everything already sent to a draining subscriber is still handled.
	drainer := connect(url, "compat-drain")
	var handled int64
	var hmu sync.Mutex
	_, err = drainer.Subscribe("compat.drain", func(*nats.Msg) {
		time.Sleep(time.Millisecond) // a slow handler, so messages are still queued at Drain
		hmu.Lock()
		handled++
		hmu.Unlock()
	})
	must(err, "drain sub")
	must(drainer.Flush(), "flush drain")
	for i := 0; i < 100; i++ {
		must(pub.Publish("compat.drain", []byte("d")), "publish drain")
	}
	must(pub.Flush(), "flush drain pub")
	// a PING round trip on the draining side means all 100 have reached its client buffer
	must(drainer.Flush(), "flush drain side")
	must(drainer.Drain(), "drain")
	waitFor("drained connection closed", 10*time.Second, drainer.IsClosed)
	hmu.Lock()
	res["drain_handled"] = handled
	hmu.Unlock()
	return res
}

// ---------------------------------------------------------------- JetStream publish

// streamConfigView keeps the server-decided parts of a stream configuration.
func streamConfigView(c nats.StreamConfig) result {
	return result{
		"name": c.Name, "subjects": c.Subjects, "retention": enumText(c.Retention),
		"max_consumers": c.MaxConsumers, "max_msgs": c.MaxMsgs, "max_bytes": c.MaxBytes,
		"discard": enumText(c.Discard), "max_age": c.MaxAge.String(), "max_msgs_per_subject": c.MaxMsgsPerSubject,
		"max_msg_size": c.MaxMsgSize, "storage": enumText(c.Storage), "replicas": c.Replicas,
		"no_ack": c.NoAck, "duplicates": c.Duplicates.String(), "allow_rollup": c.AllowRollup,
		"deny_delete": c.DenyDelete, "deny_purge": c.DenyPurge, "allow_direct": c.AllowDirect,
		"mirror_direct": c.MirrorDirect, "sealed": c.Sealed, "description": c.Description,
	}
}

// enumText renders a config enum the way nats.go puts it on the wire.
func enumText(v interface{}) string {
	b, err := json.Marshal(v)
	must(err, "marshal enum")
	return strings.Trim(string(b), `"`)
}

func stateView(s nats.StreamState) result {
	return result{"msgs": s.Msgs, "bytes": s.Bytes, "first_seq": s.FirstSeq, "last_seq": s.LastSeq,
		"consumers": s.Consumers, "num_deleted": s.NumDeleted, "num_subjects": s.NumSubjects}
}

func ackView(a *nats.PubAck, err error) interface{} {
	if err != nil {
		return result{"error": apiErr(err)}
	}
	return result{"stream": a.Stream, "seq": a.Sequence, "duplicate": a.Duplicate}
}

func scenarioJS(url string) result {
	res := result{}
	nc := connect(url, "compat-js")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	acct, err := js.AccountInfo()
	must(err, "account info")
	res["account_before"] = result{"streams": acct.Streams, "consumers": acct.Consumers}

	si, err := js.AddStream(&nats.StreamConfig{Name: "COMPAT_JS", Subjects: []string{"cjs.>"},
		Storage: nats.FileStorage, Duplicates: time.Minute})
	must(err, "add stream")
	res["created"] = result{"config": streamConfigView(si.Config), "state": stateView(si.State)}
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_JS", Subjects: []string{"other.>"}})
	res["add_conflicting"] = apiErr(err)
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_OVERLAP", Subjects: []string{"cjs.a"}})
	res["add_overlapping"] = apiErr(err)

	var acks []interface{}
	for i := 1; i <= 3; i++ {
		acks = append(acks, ackView(js.Publish("cjs.a", []byte(fmt.Sprintf("a%d", i)))))
	}
	hm := nats.NewMsg("cjs.h")
	hm.Header.Set("X-Key", "v")
	hm.Data = []byte("has header")
	acks = append(acks, ackView(js.PublishMsg(hm)))
	acks = append(acks, ackView(js.Publish("cjs.d", []byte("one"), nats.MsgId("id-1"))))
	acks = append(acks, ackView(js.Publish("cjs.d", []byte("one again"), nats.MsgId("id-1"))))
	acks = append(acks, ackView(js.Publish("cjs.e", []byte("x"), nats.ExpectLastSequence(1))))
	acks = append(acks, ackView(js.Publish("cjs.e", []byte("x"), nats.ExpectLastSequence(5))))
	acks = append(acks, ackView(js.Publish("cjs.e", []byte("x"), nats.ExpectStream("NOPE"))))
	acks = append(acks, ackView(js.Publish("cjs.a", []byte("x"), nats.ExpectLastSequencePerSubject(3))))
	acks = append(acks, ackView(js.Publish("cjs.a", []byte("a4"), nats.ExpectLastSequencePerSubject(3))))
	acks = append(acks, ackView(js.Publish("cjs.f", []byte("x"), nats.ExpectLastMsgId("id-1"))))
	res["sync_acks"] = acks
	_, err = js.Publish("nostream.here", []byte("x"))
	res["publish_without_stream"] = errText(err)

	// PublishAsync: all futures resolve, sequences are contiguous after the sync ones.
	const nAsync = 200
	futures := make([]nats.PubAckFuture, 0, nAsync)
	for i := 0; i < nAsync; i++ {
		f, err := js.PublishAsync(fmt.Sprintf("cjs.async.%d", i%7), []byte(fmt.Sprintf("async-%d", i)))
		must(err, "publish async")
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(15 * time.Second):
		fail(errors.New("publish async did not complete"))
	}
	var seqs []uint64
	asyncErrors := 0
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			seqs = append(seqs, a.Sequence)
		case <-f.Err():
			asyncErrors++
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	contiguous := true
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			contiguous = false
		}
	}
	res["async"] = result{"acked": len(seqs), "errors": asyncErrors, "first": seqs[0],
		"last": seqs[len(seqs)-1], "contiguous": contiguous}

	// Direct stream reads through the API.
	raw, err := js.GetMsg("COMPAT_JS", 4)
	must(err, "get msg")
	res["get_msg_4"] = result{"subject": raw.Subject, "seq": raw.Sequence, "data": string(raw.Data),
		"header": headerMap(raw.Header)}
	last, err := js.GetLastMsg("COMPAT_JS", "cjs.a")
	must(err, "get last")
	res["get_last_a"] = result{"subject": last.Subject, "seq": last.Sequence, "data": string(last.Data)}
	_, err = js.GetMsg("COMPAT_JS", 100000)
	res["get_missing"] = apiErr(err)

	must(js.DeleteMsg("COMPAT_JS", 2), "delete msg")
	res["delete_again"] = apiErr(js.DeleteMsg("COMPAT_JS", 2))
	info, err := js.StreamInfo("COMPAT_JS")
	must(err, "stream info")
	res["after_delete"] = stateView(info.State)
	must(js.PurgeStream("COMPAT_JS", &nats.StreamPurgeRequest{Subject: "cjs.async.3"}), "purge filtered")
	info, err = js.StreamInfo("COMPAT_JS")
	must(err, "stream info")
	res["after_filtered_purge"] = stateView(info.State)

	var names []string
	for n := range js.StreamNames() {
		names = append(names, n)
	}
	sort.Strings(names)
	res["stream_names"] = names
	_, err = js.StreamInfo("MISSING")
	res["info_missing"] = errText(err)

	si.Config.MaxMsgs = 50
	up, err := js.UpdateStream(&si.Config)
	must(err, "update stream")
	res["after_update_max_msgs"] = stateView(up.State)
	res["update_storage"] = apiErr(func() error {
		c := si.Config
		c.Storage = nats.MemoryStorage
		_, err := js.UpdateStream(&c)
		return err
	}())
	// Memory storage: same publishes, same state (including byte accounting).
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_MEM", Subjects: []string{"mem.>"},
		Storage: nats.MemoryStorage})
	must(err, "memory stream")
	for i := 0; i < 5; i++ {
		m := nats.NewMsg(fmt.Sprintf("mem.%d", i%2))
		m.Header.Set("X-I", fmt.Sprint(i))
		m.Data = []byte(strings.Repeat("m", i*10))
		_, err := js.PublishMsg(m)
		must(err, "publish memory")
	}
	must(js.DeleteMsg("COMPAT_MEM", 2), "delete memory msg")
	mi, err := js.StreamInfo("COMPAT_MEM")
	must(err, "memory stream info")
	res["memory_state"] = stateView(mi.State)
	ml, err := js.GetLastMsg("COMPAT_MEM", "mem.0")
	must(err, "memory last")
	res["memory_last_0"] = result{"seq": ml.Sequence, "header": headerMap(ml.Header), "len": len(ml.Data)}

	// A message as large as the server allows, stored and read back.
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_BIG", Subjects: []string{"big.>"}})
	must(err, "big stream")
	bigData := bytes.Repeat([]byte("B"), int(nc.MaxPayload())-64)
	res["big_publish"] = ackView(js.Publish("big.x", bigData))
	bigMsg, err := js.GetMsg("COMPAT_BIG", 1)
	must(err, "get big")
	res["big_roundtrip"] = bytes.Equal(bigMsg.Data, bigData)
	bi, err := js.StreamInfo("COMPAT_BIG")
	must(err, "big info")
	res["big_state"] = stateView(bi.State)

	// A full stream with discard new refuses the publish (Kyma's publisher answers 507).
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_FULL", Subjects: []string{"full.>"},
		MaxMsgs: 2, Discard: nats.DiscardNew})
	must(err, "add full stream")
	var full []interface{}
	for i := 0; i < 3; i++ {
		full = append(full, ackView(js.Publish("full.x", []byte("x"))))
	}
	res["discard_new_full"] = full
	// The byte limit: how many equal messages fit depends on how the store counts bytes.
	_, err = js.AddStream(&nats.StreamConfig{Name: "COMPAT_BYTES", Subjects: []string{"bytes.>"},
		MaxBytes: 1000, Discard: nats.DiscardNew})
	must(err, "add bytes stream")
	accepted := 0
	var lastErr error
	for accepted < 100 {
		if _, lastErr = js.Publish("bytes.x", []byte("0123456789")); lastErr != nil {
			break
		}
		accepted++
	}
	res["max_bytes_discard_new"] = result{"accepted": accepted, "error": apiErr(lastErr)}
	must(js.PurgeStream("COMPAT_JS"), "purge")
	info, err = js.StreamInfo("COMPAT_JS")
	must(err, "stream info")
	res["after_purge"] = stateView(info.State)
	must(js.DeleteStream("COMPAT_JS"), "delete stream")
	res["delete_missing"] = errText(js.DeleteStream("COMPAT_JS"))
	return res
}

// ---------------------------------------------------------------- Kyma-style push consumer

func consumerView(ci *nats.ConsumerInfo) result {
	c := ci.Config
	deliver := c.DeliverSubject
	if strings.HasPrefix(deliver, nats.InboxPrefix) {
		deliver = "<inbox>"
	}
	return result{
		"stream": ci.Stream, "name": ci.Name,
		"config": result{
			"durable": c.Durable, "description": c.Description, "deliver_subject": deliver,
			"deliver_policy": enumText(c.DeliverPolicy), "ack_policy": enumText(c.AckPolicy),
			"ack_wait": c.AckWait.String(), "max_deliver": c.MaxDeliver, "filter_subject": c.FilterSubject,
			"replay_policy": enumText(c.ReplayPolicy), "max_ack_pending": c.MaxAckPending,
			"flow_control": c.FlowControl, "heartbeat": c.Heartbeat.String(), "max_waiting": c.MaxWaiting,
			"deliver_group": c.DeliverGroup, "headers_only": c.HeadersOnly,
		},
		"delivered":       result{"consumer_seq": ci.Delivered.Consumer, "stream_seq": ci.Delivered.Stream},
		"ack_floor":       result{"consumer_seq": ci.AckFloor.Consumer, "stream_seq": ci.AckFloor.Stream},
		"num_ack_pending": ci.NumAckPending, "num_redelivered": ci.NumRedelivered,
		"num_waiting": ci.NumWaiting, "num_pending": ci.NumPending, "push_bound": ci.PushBound,
	}
}

type delivery struct {
	Subject   string `json:"subject"`
	Data      string `json:"data"`
	StreamSeq uint64 `json:"stream_seq"`
	ConsSeq   uint64 `json:"consumer_seq"`
	Delivered uint64 `json:"num_delivered"`
	Pending   uint64 `json:"num_pending"`
	Stream    string `json:"stream"`
	Consumer  string `json:"consumer"`
	CEType    string `json:"ce_type"`
}

func toDelivery(m *nats.Msg) delivery {
	md, err := m.Metadata()
	must(err, "metadata")
	return delivery{Subject: m.Subject, Data: string(m.Data), StreamSeq: md.Sequence.Stream,
		ConsSeq: md.Sequence.Consumer, Delivered: md.NumDelivered, Pending: md.NumPending,
		Stream: md.Stream, Consumer: md.Consumer, CEType: m.Header.Get("ce-type")}
}

func scenarioPush(url string) result {
	res := result{}
	nc := connect(url, "compat-push")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	// The stream as the eventing manager creates it (one replica here: a single server).
	si, err := js.AddStream(&nats.StreamConfig{Name: "sap", Subjects: []string{"kyma.>"},
		Storage: nats.FileStorage, Replicas: 1, Retention: nats.InterestPolicy, MaxMsgs: -1,
		MaxBytes: 700 * 1024 * 1024, MaxMsgsPerSubject: 1000000, Discard: nats.DiscardNew})
	must(err, "add stream")
	res["stream"] = streamConfigView(si.Config)

	// Published before any consumer exists: interest retention keeps nothing for nobody.
	for i := 0; i < 3; i++ {
		_, err := js.Publish("kyma.app.order.created.v1", []byte(fmt.Sprintf("early-%d", i)))
		must(err, "early publish")
	}
	si, err = js.StreamInfo("sap")
	must(err, "stream info")
	res["state_before_consumer"] = stateView(si.State)

	subject := "kyma.app.order.created.v1"
	desc := "default/order-sub/" + subject
	sum := sha256.Sum256([]byte(desc))
	durable := hex.EncodeToString(sum[:])[:32]
	ci, err := js.AddConsumer("sap", &nats.ConsumerConfig{
		Durable: durable, Description: desc, DeliverSubject: nats.NewInbox(),
		DeliverPolicy: nats.DeliverNewPolicy, AckPolicy: nats.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 100, FilterSubject: subject,
		ReplayPolicy: nats.ReplayInstantPolicy, MaxAckPending: 10,
		FlowControl: true, Heartbeat: time.Minute,
	})
	must(err, "add consumer")
	res["consumer_created"] = consumerView(ci)

	// Events arrive while no client is bound: the consumer must hold them.
	const n = 30
	for i := 0; i < n; i++ {
		m := nats.NewMsg(subject)
		m.Header.Set("ce-type", subject)
		m.Header.Set("ce-id", fmt.Sprint(i))
		m.Data = []byte(fmt.Sprintf(`{"n":%d}`, i))
		_, err := js.PublishMsg(m)
		must(err, "publish")
		_, err = js.Publish("kyma.app.other.v1", []byte("not for this consumer"))
		must(err, "publish other")
	}
	// nats-server 2.10+ counts a filtered consumer's pending messages after the PubAck, on
	// its own goroutine: under load the last one may not be counted yet, so wait (5 s at most)
	// for the count to settle before reporting it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ci, err = js.ConsumerInfo("sap", durable)
		must(err, "consumer info")
		if ci.NumPending >= n || time.Now().After(deadline) {
			break
		}
	}
	res["consumer_unbound"] = consumerView(ci)

	// Bind like the dispatcher: manual ack, nak (with delay) the 5th event once, ack the rest.
	var mu sync.Mutex
	var got []delivery
	nakked := false
	sub, err := js.Subscribe(subject, func(m *nats.Msg) {
		d := toDelivery(m)
		mu.Lock()
		got = append(got, d)
		nak := d.Data == `{"n":4}` && !nakked
		if nak {
			nakked = true
		}
		mu.Unlock()
		if nak {
			// the dispatcher's retry after a failed sink call (30s there, short here)
			_ = m.NakWithDelay(300 * time.Millisecond)
		} else {
			_ = m.Ack()
		}
	}, nats.Bind("sap", durable), nats.ManualAck())
	must(err, "bind subscribe")
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	waitFor("push deliveries", 15*time.Second, func() bool { return count() >= n+1 })
	waitFor("acks settle", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", durable)
		must(err, "consumer info")
		return ci.NumAckPending == 0 && ci.AckFloor.Consumer >= uint64(n+1)
	})
	res["consumer_after_acks"] = consumerView(ci)
	mu.Lock()
	sort.SliceStable(got, func(i, j int) bool {
		if got[i].StreamSeq != got[j].StreamSeq {
			return got[i].StreamSeq < got[j].StreamSeq
		}
		return got[i].Delivered < got[j].Delivered
	})
	// Where the redelivery falls among the first deliveries depends on when the nak
	// landed, so consumer sequences are reported as a set: every delivery, redelivery
	// included, takes the next one.
	var cseqs []int
	for i := range got {
		cseqs = append(cseqs, int(got[i].ConsSeq))
		got[i].ConsSeq = 0
		if got[i].Delivered > 1 {
			got[i].Pending = 0
		}
	}
	sort.Ints(cseqs)
	res["consumer_seqs"] = cseqs
	res["deliveries"] = got
	mu.Unlock()
	si, err = js.StreamInfo("sap")
	must(err, "stream info")
	res["state_after_acks"] = stateView(si.State)

	// What the manager's startup cleanup reads: every consumer of the stream, push-bound or not.
	var listed []result
	for info := range js.Consumers("sap") {
		listed = append(listed, result{"name": info.Name, "push_bound": info.PushBound,
			"filter": info.Config.FilterSubject, "description": info.Config.Description})
	}
	res["consumers_listed"] = listed
	// A second bind to a push consumer that already has a subscriber is refused by nats.go.
	_, err = js.Subscribe(subject, func(*nats.Msg) {}, nats.Bind("sap", durable), nats.ManualAck())
	res["second_bind"] = errText(err)

	// Raise max ack pending in place, as the manager does when maxInFlightMessages changes.
	cfg := ci.Config
	cfg.MaxAckPending = 20
	ci, err = js.UpdateConsumer("sap", &cfg)
	must(err, "update consumer")
	res["updated_max_ack_pending"] = ci.Config.MaxAckPending
	cfg.FilterSubject = "kyma.app.changed.v1"
	_, err = js.UpdateConsumer("sap", &cfg)
	res["update_filter"] = apiErr(err)

	must(sub.Unsubscribe(), "unsubscribe")
	waitFor("push unbound", 5*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", durable)
		must(err, "consumer info")
		return !ci.PushBound
	})
	res["push_bound_after_unsubscribe"] = ci.PushBound
	must(js.DeleteConsumer("sap", durable), "delete consumer")
	res["delete_consumer_again"] = errText(js.DeleteConsumer("sap", durable))
	return res
}

// ---------------------------------------------------------------- flow control and heartbeats

func scenarioFlow(url string) result {
	res := result{}
	nc := connect(url, "compat-flow")
	defer nc.Close()
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(64))
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "FLOW", Subjects: []string{"flow.>"}, Storage: nats.FileStorage})
	must(err, "add stream")

	// Enough bytes that the server's flow-control window (1/32 of 32 MiB) must be reopened
	// several times by the client's replies before everything is through.
	const n = 300
	payload := strings.Repeat("x", 16*1024)

	// 1. A client-created durable push consumer, subscribe options as the dispatcher uses.
	var mu sync.Mutex
	received := map[string]bool{}
	inOrder := true
	lastSeq := uint64(0)
	sub, err := js.Subscribe("flow.>", func(m *nats.Msg) {
		md, err := m.Metadata()
		mu.Lock()
		if err == nil {
			if md.Sequence.Stream <= lastSeq {
				inOrder = false
			}
			lastSeq = md.Sequence.Stream
		}
		received[m.Subject] = true
		mu.Unlock()
		_ = m.Ack()
	}, nats.Durable("FLOWDUR"), nats.DeliverNew(), nats.AckExplicit(), nats.ManualAck(),
		nats.AckWait(30*time.Second), nats.MaxDeliver(100), nats.MaxAckPending(50),
		nats.EnableFlowControl(), nats.IdleHeartbeat(500*time.Millisecond))
	must(err, "subscribe")

	// 2. A consumer read at the protocol level: see the status messages nats.go hides.
	raw, err := nc.SubscribeSync("rawdeliver.flow")
	must(err, "raw sub")
	must(nc.Flush(), "flush")
	_, err = js.AddConsumer("FLOW", &nats.ConsumerConfig{Durable: "RAW", DeliverSubject: "rawdeliver.flow",
		AckPolicy: nats.AckNonePolicy, FlowControl: true, Heartbeat: 500 * time.Millisecond,
		FilterSubject: "flow.data.>"})
	must(err, "raw consumer")

	for i := 0; i < n; i++ {
		_, err := js.PublishAsync(fmt.Sprintf("flow.data.%d", i), []byte(payload))
		must(err, "publish async")
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		fail(errors.New("publish async did not complete"))
	}

	dataMsgs, fcRequests, fcAfterData := 0, 0, 0
	var hbAfterAll nats.Header
	deadline := time.Now().Add(30 * time.Second)
	for hbAfterAll == nil {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("raw consumer: %d data, %d fc, no heartbeat after all data", dataMsgs, fcRequests))
		}
		m, err := raw.NextMsg(5 * time.Second)
		must(err, "raw next")
		switch {
		case m.Header.Get("Status") == "100" && m.Reply != "":
			fcRequests++
			if dataMsgs == n {
				fcAfterData++
			}
			must(nc.Publish(m.Reply, nil), "fc reply")
		case m.Header.Get("Status") == "100":
			if dataMsgs == n {
				hbAfterAll = m.Header
			}
		default:
			dataMsgs++
		}
	}
	res["raw"] = result{
		"data_msgs":               dataMsgs,
		"flow_control_requested":  fcRequests > 0,
		"heartbeat_description":   hbAfterAll.Get("Description"),
		"heartbeat_last_consumer": hbAfterAll.Get("Nats-Last-Consumer"),
		"heartbeat_last_stream":   hbAfterAll.Get("Nats-Last-Stream"),
		"heartbeat_stalled":       hbAfterAll.Get("Nats-Consumer-Stalled"),
	}

	count := func() int { mu.Lock(); defer mu.Unlock(); return len(received) }
	waitFor("flow deliveries", 30*time.Second, func() bool { return count() >= n })
	ci, err := js.ConsumerInfo("FLOW", "FLOWDUR")
	must(err, "consumer info")
	waitFor("flow acks", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("FLOW", "FLOWDUR")
		must(err, "consumer info")
		return ci.NumAckPending == 0
	})
	// Stay idle for more than two heartbeat intervals: nats.go reports a consumer silent for
	// two intervals as an async error, so missing heartbeats would show up in async_errors.
	idleUntil := time.Now().Add(1200 * time.Millisecond)
	waitFor("idle period", 3*time.Second, func() bool { return time.Now().After(idleUntil) })
	mu.Lock()
	res["durable"] = result{"received": len(received), "in_order": inOrder,
		"delivered_stream_seq": ci.Delivered.Stream, "ack_floor_stream_seq": ci.AckFloor.Stream,
		"num_ack_pending": ci.NumAckPending, "flow_control": ci.Config.FlowControl,
		"heartbeat": ci.Config.Heartbeat.String()}
	mu.Unlock()
	must(sub.Unsubscribe(), "unsubscribe")

	// 3. A queue group on a durable push consumer (deliver group): each message once.
	qseen := map[string]int{}
	var qmu sync.Mutex
	qcb := func(m *nats.Msg) {
		qmu.Lock()
		qseen[m.Subject]++
		qmu.Unlock()
		_ = m.Ack()
	}
	var qsubs []*nats.Subscription
	for i := 0; i < 2; i++ {
		qs, err := js.QueueSubscribe("flow.data.>", "grp", qcb, nats.Durable("QDUR"), nats.DeliverAll(),
			nats.ManualAck(), nats.AckExplicit())
		must(err, "queue subscribe")
		qsubs = append(qsubs, qs)
	}
	qtotal := func() int {
		qmu.Lock()
		defer qmu.Unlock()
		n := 0
		for _, c := range qseen {
			n += c
		}
		return n
	}
	waitFor("queue group deliveries", 30*time.Second, func() bool { return qtotal() >= n })
	qci, err := js.ConsumerInfo("FLOW", "QDUR")
	must(err, "queue consumer info")
	waitFor("queue acks", 10*time.Second, func() bool {
		qci, err = js.ConsumerInfo("FLOW", "QDUR")
		must(err, "consumer info")
		return qci.NumAckPending == 0
	})
	qmu.Lock()
	qdups := 0
	for _, c := range qseen {
		if c > 1 {
			qdups++
		}
	}
	res["queue_group"] = result{"distinct": len(qseen), "duplicates": qdups,
		"deliver_group": qci.Config.DeliverGroup, "ack_floor_stream_seq": qci.AckFloor.Stream}
	qmu.Unlock()
	for _, qs := range qsubs {
		must(qs.Unsubscribe(), "queue unsubscribe")
	}

	// 4. An ordered consumer: ephemeral, flow control and heartbeats chosen by nats.go.
	ordered := 0
	orderedOK := true
	var omu sync.Mutex
	osub, err := js.Subscribe("flow.data.>", func(m *nats.Msg) {
		md, err := m.Metadata()
		omu.Lock()
		ordered++
		if err != nil || md.Sequence.Consumer != uint64(ordered) {
			orderedOK = false
		}
		omu.Unlock()
	}, nats.OrderedConsumer(), nats.DeliverAll())
	must(err, "ordered subscribe")
	waitFor("ordered deliveries", 30*time.Second, func() bool { omu.Lock(); defer omu.Unlock(); return ordered >= n })
	omu.Lock()
	res["ordered"] = result{"received": ordered, "consumer_seqs_contiguous": orderedOK}
	omu.Unlock()
	must(osub.Unsubscribe(), "ordered unsubscribe")
	return res
}

// ---------------------------------------------------------------- pull consumer

func pullView(msgs []*nats.Msg, err error) result {
	var ds []delivery
	for _, m := range msgs {
		ds = append(ds, toDelivery(m))
	}
	return result{"msgs": ds, "error": errText(err)}
}

func scenarioPull(url string) result {
	res := result{}
	nc := connect(url, "compat-pull")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "PULLS", Subjects: []string{"pull.>"}, Storage: nats.FileStorage})
	must(err, "add stream")
	for i := 1; i <= 10; i++ {
		_, err := js.Publish(fmt.Sprintf("pull.%d", i%3), []byte(fmt.Sprintf("m%d", i)))
		must(err, "publish")
	}
	ci, err := js.AddConsumer("PULLS", &nats.ConsumerConfig{Durable: "PD", AckPolicy: nats.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 100})
	must(err, "add consumer")
	res["created"] = consumerView(ci)
	sub, err := js.PullSubscribe("pull.>", "PD", nats.Bind("PULLS", "PD"))
	must(err, "pull subscribe")

	msgs, err := sub.Fetch(4, nats.MaxWait(5*time.Second))
	res["fetch_4"] = pullView(msgs, err)
	for _, m := range msgs {
		must(m.AckSync(), "ack sync")
	}
	// More requested than stored: nats.go returns what is there when the server says so.
	msgs, err = sub.Fetch(10, nats.MaxWait(2*time.Second))
	res["fetch_10"] = pullView(msgs, err)
	for i, m := range msgs {
		switch i {
		case 0:
			must(m.Nak(), "nak")
		case 1:
			must(m.Term(), "term")
		case 2:
			must(m.InProgress(), "in progress")
			must(m.AckSync(), "ack sync")
		default:
			must(m.AckSync(), "ack sync")
		}
	}
	msgs, err = sub.Fetch(1, nats.MaxWait(5*time.Second))
	res["fetch_after_nak"] = pullView(msgs, err)
	for _, m := range msgs {
		must(m.AckSync(), "ack sync")
	}
	msgs, err = sub.Fetch(1, nats.MaxWait(300*time.Millisecond))
	res["fetch_empty"] = pullView(msgs, err)

	// A fetch that is waiting when the message arrives.
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = js.Publish("pull.late", []byte("late"))
	}()
	msgs, err = sub.Fetch(1, nats.MaxWait(5*time.Second))
	res["fetch_waiting"] = pullView(msgs, err)
	for _, m := range msgs {
		must(m.AckSync(), "ack sync")
	}
	ci, err = js.ConsumerInfo("PULLS", "PD")
	must(err, "consumer info")
	res["final"] = consumerView(ci)

	var names []string
	for n := range js.ConsumerNames("PULLS") {
		names = append(names, n)
	}
	res["consumer_names"] = names
	_, err = js.ConsumerInfo("PULLS", "NOPE")
	res["info_missing"] = errText(err)
	must(sub.Unsubscribe(), "unsubscribe")
	return res
}

// ---------------------------------------------------------------- key-value

func entryView(e nats.KeyValueEntry, err error) interface{} {
	if err != nil {
		return result{"error": errText(err)}
	}
	if e == nil {
		return nil
	}
	return result{"bucket": e.Bucket(), "key": e.Key(), "value": string(e.Value()),
		"revision": e.Revision(), "op": e.Operation().String()}
}

func scenarioKV(url string) result {
	res := result{}
	nc := connect(url, "compat-kv")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "compat", History: 5, Description: "compat kv"})
	must(err, "create bucket")
	si, err := js.StreamInfo("KV_compat")
	must(err, "backing stream info")
	res["backing_stream"] = streamConfigView(si.Config)

	w, err := kv.WatchAll()
	must(err, "watch all")
	first := <-w.Updates()
	res["watch_initial_marker"] = first == nil

	revs := result{}
	r, err := kv.PutString("a", "1")
	must(err, "put")
	revs["put_a1"] = r
	r, err = kv.Put("b.c", []byte("bc"))
	must(err, "put")
	revs["put_bc"] = r
	r, err = kv.PutString("a", "2")
	must(err, "put")
	revs["put_a2"] = r
	r, err = kv.Update("a", []byte("3"), 3)
	revs["update_a_ok"] = result{"rev": r, "error": apiErr(err)}
	r, err = kv.Update("a", []byte("4"), 3)
	revs["update_a_stale"] = result{"rev": r, "error": apiErr(err)}
	r, err = kv.Create("a", []byte("5"))
	revs["create_existing"] = result{"rev": r, "error": errText(err)}
	r, err = kv.Create("new", []byte("n"))
	revs["create_new"] = result{"rev": r, "error": errText(err)}
	res["writes"] = revs

	res["get_a"] = entryView(kv.Get("a"))
	res["get_a_rev1"] = entryView(kv.GetRevision("a", 1))
	res["get_missing"] = entryView(kv.Get("nope"))
	must(kv.Delete("b.c"), "delete")
	res["get_deleted"] = entryView(kv.Get("b.c"))
	r, err = kv.Create("b.c", []byte("again"))
	res["create_after_delete"] = result{"rev": r, "error": errText(err)}

	keys, err := kv.Keys()
	must(err, "keys")
	sort.Strings(keys)
	res["keys"] = keys
	hist, err := kv.History("a")
	must(err, "history")
	var hv []interface{}
	for _, e := range hist {
		hv = append(hv, entryView(e, nil))
	}
	res["history_a"] = hv

	// The live watcher saw every change in order.
	var live []interface{}
	for len(live) < 7 {
		select {
		case e := <-w.Updates():
			live = append(live, entryView(e, nil))
		case <-time.After(5 * time.Second):
			fail(fmt.Errorf("watch: only %d updates", len(live)))
		}
	}
	res["watch_live"] = live
	must(w.Stop(), "watch stop")

	// A new watcher on one key gets its latest value, then the end-of-initial marker.
	kw, err := kv.Watch("a")
	must(err, "watch a")
	var initial []interface{}
	for {
		e := <-kw.Updates()
		if e == nil {
			break
		}
		initial = append(initial, entryView(e, nil))
	}
	res["watch_a_initial"] = initial
	_, err = kv.PutString("a", "after watch")
	must(err, "put")
	select {
	case e := <-kw.Updates():
		res["watch_a_next"] = entryView(e, nil)
	case <-time.After(5 * time.Second):
		fail(errors.New("watch a: no update"))
	}
	must(kw.Stop(), "watch stop")

	must(kv.Purge("a"), "purge")
	hist, err = kv.History("a")
	must(err, "history")
	hv = nil
	for _, e := range hist {
		hv = append(hv, entryView(e, nil))
	}
	res["history_a_after_purge"] = hv
	// Watch options: full history, deletes left out, metadata only.
	drain := func(w nats.KeyWatcher, err error) []interface{} {
		must(err, "watch")
		defer func() { _ = w.Stop() }()
		out := []interface{}{}
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					return out
				}
				out = append(out, entryView(e, nil))
			case <-time.After(5 * time.Second):
				fail(errors.New("watch: no end-of-initial marker"))
			}
		}
	}
	res["watch_include_history"] = drain(kv.WatchAll(nats.IncludeHistory()))
	res["watch_ignore_deletes"] = drain(kv.Watch("b.*", nats.IgnoreDeletes()))
	res["watch_meta_only"] = drain(kv.Watch("new", nats.MetaOnly()))
	must(kv.Delete("new"), "delete new")
	must(kv.PurgeDeletes(nats.DeleteMarkersOlderThan(-1)), "purge deletes")
	keysLeft, err := kv.Keys()
	res["keys_after_purge_deletes"] = result{"keys": keysLeft, "error": errText(err)}
	st, err := kv.Status()
	must(err, "status")
	res["status"] = result{"bucket": st.Bucket(), "values": st.Values(), "history": st.History(),
		"ttl": st.TTL().String(), "backing_store": st.BackingStore()}
	var buckets []string
	for b := range js.KeyValueStoreNames() {
		buckets = append(buckets, b)
	}
	res["buckets"] = buckets
	must(js.DeleteKeyValue("compat"), "delete bucket")
	_, err = js.KeyValue("compat")
	res["bind_deleted"] = errText(err)
	return res
}

// ---------------------------------------------------------------- object store

func objView(oi *nats.ObjectInfo, err error) interface{} {
	if err != nil {
		return result{"error": errText(err)}
	}
	return result{"name": oi.Name, "bucket": oi.Bucket, "size": oi.Size, "chunks": oi.Chunks,
		"digest": oi.Digest, "deleted": oi.Deleted, "description": oi.Description}
}

func scenarioObj(url string) result {
	res := result{}
	nc := connect(url, "compat-obj")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	obs, err := js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: "compatobj", Description: "compat"})
	must(err, "create object store")
	// Bigger than one chunk (128 KiB) and not a multiple of it.
	big := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	res["put_big"] = objView(obs.PutBytes("big.bin", big))
	res["put_small"] = objView(obs.PutString("small.txt", "hello object"))
	got, err := obs.GetBytes("big.bin")
	must(err, "get big")
	res["get_big_equal"] = bytes.Equal(got, big)
	s, err := obs.GetString("small.txt")
	res["get_small"] = result{"value": s, "error": errText(err)}
	res["info_big"] = objView(obs.GetInfo("big.bin"))
	res["replace_small"] = objView(obs.PutString("small.txt", "replaced"))
	s, err = obs.GetString("small.txt")
	res["get_replaced"] = result{"value": s, "error": errText(err)}
	list, err := obs.List()
	must(err, "list")
	var names []string
	for _, oi := range list {
		names = append(names, oi.Name)
	}
	sort.Strings(names)
	res["list"] = names
	must(obs.Delete("big.bin"), "delete")
	_, err = obs.GetBytes("big.bin")
	res["get_deleted"] = errText(err)
	res["info_deleted"] = objView(obs.GetInfo("big.bin", nats.GetObjectInfoShowDeleted()))
	st, err := obs.Status()
	must(err, "status")
	res["status"] = result{"bucket": st.Bucket(), "sealed": st.Sealed(), "storage": enumText(st.Storage()),
		"description": st.Description()}
	must(js.DeleteObjectStore("compatobj"), "delete store")
	_, err = js.ObjectStore("compatobj")
	res["bind_deleted"] = errText(err)
	return res
}

// ---------------------------------------------------------------- server restart

// scenarioRestart keeps one connection and one bound push consumer across a server restart,
// as the dispatcher does. It prints RESTART on stdout and waits for a line on stdin; the test
// restarts the server (same port, same store) in between.
func scenarioRestart(url string) result {
	res := result{}
	reconnected := make(chan struct{}, 16)
	nc, err := nats.Connect(url, nats.Name("compat-restart"), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs.add(err) }))
	must(err, "connect")
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(2 * time.Second))
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "sap", Subjects: []string{"kyma.>"},
		Storage: nats.FileStorage, Retention: nats.InterestPolicy, Discard: nats.DiscardNew})
	must(err, "add stream")
	subject := "kyma.app.order.created.v1"
	// Kyma's settings, except a short ack wait so an unacked event comes back within the test.
	_, err = js.AddConsumer("sap", &nats.ConsumerConfig{Durable: "restartdur", DeliverSubject: nats.NewInbox(),
		DeliverPolicy: nats.DeliverNewPolicy, AckPolicy: nats.AckExplicitPolicy, AckWait: 2 * time.Second,
		MaxDeliver: 100, FilterSubject: subject, MaxAckPending: 10, FlowControl: true, Heartbeat: time.Minute})
	must(err, "add consumer")

	type seen struct {
		Data      string `json:"data"`
		StreamSeq uint64 `json:"stream_seq"`
		Delivered uint64 `json:"num_delivered"`
	}
	var mu sync.Mutex
	var got []seen
	_, err = js.Subscribe(subject, func(m *nats.Msg) {
		md, err := m.Metadata()
		must(err, "metadata")
		mu.Lock()
		got = append(got, seen{string(m.Data), md.Sequence.Stream, md.NumDelivered})
		mu.Unlock()
		// the sink is "down" for event 9 the first time: no ack, so it must come back
		if string(m.Data) != "e9" || md.NumDelivered > 1 {
			_ = m.AckSync()
		}
	}, nats.Bind("sap", "restartdur"), nats.ManualAck())
	must(err, "bind")
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	for i := 0; i < 10; i++ {
		_, err := js.Publish(subject, []byte(fmt.Sprintf("e%d", i)))
		must(err, "publish")
	}
	waitFor("phase 1 deliveries", 10*time.Second, func() bool { return count() >= 10 })
	ci, err := js.ConsumerInfo("sap", "restartdur")
	must(err, "consumer info")
	waitFor("phase 1 acks", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", "restartdur")
		must(err, "consumer info")
		return ci.NumAckPending == 1
	})
	res["before_restart"] = result{"ack_floor_stream_seq": ci.AckFloor.Stream, "num_ack_pending": ci.NumAckPending}

	fmt.Println("RESTART")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail(fmt.Errorf("waiting for the restart: %w", err))
	}
	select {
	case <-reconnected:
	case <-time.After(20 * time.Second):
		fail(errors.New("no reconnect after the restart"))
	}
	// JetStream may still be recovering right after the listener is back.
	deadline := time.Now().Add(15 * time.Second)
	for i := 10; i < 20; {
		if _, err := js.Publish(subject, []byte(fmt.Sprintf("e%d", i))); err != nil {
			if time.Now().After(deadline) {
				fail(fmt.Errorf("publish after restart: %w", err))
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		i++
	}
	waitFor("phase 2 deliveries", 20*time.Second, func() bool { return count() >= 21 })
	waitFor("phase 2 acks", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", "restartdur")
		must(err, "consumer info")
		return ci.NumAckPending == 0 && ci.AckFloor.Stream == 20
	})
	mu.Lock()
	sort.SliceStable(got, func(i, j int) bool { return got[i].StreamSeq < got[j].StreamSeq })
	res["deliveries"] = got
	mu.Unlock()
	res["after_restart"] = result{"ack_floor_stream_seq": ci.AckFloor.Stream, "num_ack_pending": ci.NumAckPending,
		"delivered_stream_seq": ci.Delivered.Stream, "num_redelivered": ci.NumRedelivered,
		"push_bound": ci.PushBound}
	si, err := js.StreamInfo("sap")
	must(err, "stream info")
	res["stream_after"] = stateView(si.State)
	return res
}

// ---------------------------------------------------------------- authentication and TLS

// roundTrip checks a connection really works: a subscription sees a publish and a request
// gets its reply.
func roundTrip(nc *nats.Conn) interface{} {
	sub, err := nc.SubscribeSync("compat.rt")
	if err != nil {
		return errText(err)
	}
	svc, err := nc.Subscribe("compat.rt.svc", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	if err != nil {
		return errText(err)
	}
	defer func() { _ = sub.Unsubscribe(); _ = svc.Unsubscribe() }()
	if err := nc.Publish("compat.rt", []byte("hello")); err != nil {
		return errText(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		return errText(err)
	}
	r, err := nc.Request("compat.rt.svc", nil, 5*time.Second)
	if err != nil {
		return errText(err)
	}
	return result{"msg": string(m.Data), "reply": string(r.Data), "auth_required": nc.AuthRequired(),
		"tls_required": nc.TLSRequired()}
}

// attempt connects with the given options and reports either the connect error or a round trip.
func attempt(url string, opts ...nats.Option) interface{} {
	opts = append(opts, nats.NoReconnect(), nats.Timeout(5*time.Second))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return result{"connect_error": errText(err)}
	}
	defer nc.Close()
	return roundTrip(nc)
}

func withUserInfo(url, userinfo string) string {
	return strings.Replace(url, "nats://", "nats://"+userinfo+"@", 1)
}

func scenarioAuth(url string) result {
	return result{
		"no_credentials": attempt(url),
		"wrong_password": attempt(url, nats.UserInfo(creds.user, creds.pass+"x")),
		"unknown_user":   attempt(url, nats.UserInfo("nobody", creds.pass)),
		"user_info":      attempt(url, nats.UserInfo(creds.user, creds.pass)),
		"in_url":         attempt(withUserInfo(url, creds.user+":"+creds.pass)),
		"token_instead":  attempt(url, nats.Token(creds.pass)),
	}
}

func scenarioToken(url string) result {
	return result{
		"no_credentials": attempt(url),
		"wrong_token":    attempt(url, nats.Token(creds.token+"x")),
		"token":          attempt(url, nats.Token(creds.token)),
		"in_url":         attempt(withUserInfo(url, creds.token)),
		"user_instead":   attempt(url, nats.UserInfo(creds.token, creds.token)),
	}
}

func scenarioTLS(url string) result {
	res := result{
		"plain_client": attempt(url),
		"untrusted_ca": attempt(url, nats.Secure()),
		"trusted_ca":   attempt(url, nats.RootCAs(creds.ca)),
		"tls_url":      attempt(strings.Replace(url, "nats://", "tls://", 1), nats.RootCAs(creds.ca)),
	}
	// JetStream over the TLS connection, with an async publish burst.
	nc, err := nats.Connect(url, nats.RootCAs(creds.ca), nats.NoReconnect())
	must(err, "connect tls")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "TLS", Subjects: []string{"tls.>"}})
	must(err, "add stream")
	for i := 0; i < 100; i++ {
		_, err := js.PublishAsync("tls.x", bytes.Repeat([]byte("t"), 1000))
		must(err, "publish async")
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(15 * time.Second):
		fail(errors.New("publish async over tls did not complete"))
	}
	sub, err := js.PullSubscribe("tls.x", "tlsdur")
	must(err, "pull subscribe")
	msgs, err := sub.Fetch(100, nats.MaxWait(5*time.Second))
	must(err, "fetch")
	for _, m := range msgs {
		must(m.Ack(), "ack")
	}
	res["js_over_tls"] = result{"fetched": len(msgs)}
	return res
}

// ---------------------------------------------------------------- other JetStream subscriptions

func scenarioSubs(url string) result {
	res := result{}
	nc := connect(url, "compat-subs")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "SUBS", Subjects: []string{"subs.>"}})
	must(err, "add stream")
	for i := 1; i <= 5; i++ {
		_, err := js.Publish(fmt.Sprintf("subs.%d", i), []byte(fmt.Sprintf("s%d", i)))
		must(err, "publish")
	}

	// Ephemeral push consumer made by SubscribeSync; nats.go deletes it on Unsubscribe.
	sub, err := js.SubscribeSync("subs.>", nats.DeliverAll(), nats.AckExplicit())
	must(err, "subscribe sync")
	var data []string
	for i := 0; i < 5; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		must(err, "next")
		data = append(data, string(m.Data))
		must(m.AckSync(), "ack sync")
		if i == 0 {
			res["double_ack"] = errText(m.AckSync())
		}
	}
	res["ephemeral_sync"] = data
	ci, err := sub.ConsumerInfo()
	must(err, "consumer info")
	res["ephemeral_info"] = result{"durable": ci.Config.Durable, "ack_floor_stream_seq": ci.AckFloor.Stream,
		"num_pending": ci.NumPending, "push_bound": ci.PushBound}
	must(sub.Unsubscribe(), "unsubscribe")
	waitFor("ephemeral deleted", 5*time.Second, func() bool {
		si, err := js.StreamInfo("SUBS")
		must(err, "stream info")
		return si.State.Consumers == 0
	})
	res["ephemeral_deleted"] = true

	// Start options: by sequence, last, last per subject, new.
	starts := result{}
	for name, opt := range map[string]nats.SubOpt{
		"start_seq_3": nats.StartSequence(3), "last": nats.DeliverLast(),
		"last_per_subject": nats.DeliverLastPerSubject(),
	} {
		s, err := js.SubscribeSync("subs.>", opt, nats.AckNone())
		must(err, name)
		// Read exactly what the server says it delivered, rather than until a quiet spell.
		var ci *nats.ConsumerInfo
		waitFor(name+" delivered", 10*time.Second, func() bool {
			ci, err = s.ConsumerInfo()
			must(err, "consumer info")
			return ci.NumPending == 0
		})
		var got []string
		for uint64(len(got)) < ci.Delivered.Consumer {
			m, err := s.NextMsg(5 * time.Second)
			must(err, name+" next")
			got = append(got, string(m.Data))
		}
		starts[name] = got
		must(s.Unsubscribe(), "unsubscribe")
	}
	res["start_options"] = starts

	// A channel subscription with a filtered durable, and headers-only delivery.
	ch := make(chan *nats.Msg, 16)
	csub, err := js.ChanSubscribe("subs.2", ch, nats.Durable("CHAN"), nats.DeliverAll(), nats.AckNone())
	must(err, "chan subscribe")
	select {
	case m := <-ch:
		res["chan"] = result{"subject": m.Subject, "data": string(m.Data)}
	case <-time.After(5 * time.Second):
		fail(errors.New("chan subscription got nothing"))
	}
	must(csub.Unsubscribe(), "unsubscribe chan")
	hsub, err := js.SubscribeSync("subs.4", nats.HeadersOnly(), nats.DeliverAll(), nats.AckNone())
	must(err, "headers only")
	m, err := hsub.NextMsg(5 * time.Second)
	must(err, "headers only next")
	res["headers_only"] = result{"data": string(m.Data), "size": m.Header.Get("Nats-Msg-Size")}
	must(hsub.Unsubscribe(), "unsubscribe headers only")

	// Subscribing to a subject no stream holds.
	_, err = js.SubscribeSync("nowhere.x")
	res["no_stream"] = errText(err)
	return res
}

// ---------------------------------------------------------------- consumer and stream limits

// advisoryView keeps what the server decides in an advisory (not its id or timestamp).
func advisoryView(m *nats.Msg) interface{} {
	var doc map[string]interface{}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		return result{"subject": m.Subject, "unparsable": string(m.Data)}
	}
	delete(doc, "id")
	delete(doc, "timestamp")
	// which delivery got which consumer sequence depends on nak timing (see below)
	delete(doc, "consumer_seq")
	return result{"subject": m.Subject, "body": doc}
}

func scenarioLimits(url string) result {
	res := result{}
	nc := connect(url, "compat-limits")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "LIM", Subjects: []string{"lim.>"}})
	must(err, "add stream")

	// Pull request limits: batch size and waiting requests.
	_, err = js.AddConsumer("LIM", &nats.ConsumerConfig{Durable: "SMALL", AckPolicy: nats.AckExplicitPolicy,
		MaxRequestBatch: 5, MaxWaiting: 1})
	must(err, "add consumer")
	small, err := js.PullSubscribe("lim.>", "SMALL", nats.Bind("LIM", "SMALL"))
	must(err, "pull subscribe")
	_, err = small.Fetch(10, nats.MaxWait(time.Second))
	res["batch_over_max"] = errText(err)
	waiting := make(chan error, 1)
	go func() {
		_, err := small.Fetch(1, nats.MaxWait(10*time.Second))
		waiting <- err
	}()
	waitFor("one waiting pull request", 5*time.Second, func() bool {
		ci, err := js.ConsumerInfo("LIM", "SMALL")
		must(err, "consumer info")
		return ci.NumWaiting == 1
	})
	other, err := js.PullSubscribe("lim.>", "SMALL", nats.Bind("LIM", "SMALL"))
	must(err, "second pull subscribe")
	_, err = other.Fetch(1, nats.MaxWait(time.Second))
	res["second_waiting_request"] = errText(err)
	_, err = js.Publish("lim.release", []byte("r"))
	must(err, "publish")
	select {
	case err := <-waiting:
		res["first_waiting_request"] = errText(err)
	case <-time.After(10 * time.Second):
		fail(errors.New("waiting fetch never returned"))
	}

	// Max deliveries and termination, with the advisories the server publishes.
	adv, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.*.LIM.MD")
	must(err, "advisory sub")
	must(nc.Flush(), "flush")
	_, err = js.AddConsumer("LIM", &nats.ConsumerConfig{Durable: "MD", AckPolicy: nats.AckExplicitPolicy,
		MaxDeliver: 2, FilterSubject: "lim.md.>"})
	must(err, "add md consumer")
	md, err := js.PullSubscribe("lim.md.>", "MD", nats.Bind("LIM", "MD"))
	must(err, "md pull")
	_, err = js.Publish("lim.md.nak", []byte("nak me"))
	must(err, "publish")
	_, err = js.Publish("lim.md.term", []byte("term me"))
	must(err, "publish")
	var attempts []string
	for len(attempts) < 4 {
		// three deliveries are due (nak me twice, term me once); then nothing more
		wait := 5 * time.Second
		if len(attempts) == 3 {
			wait = time.Second
		}
		msgs, err := md.Fetch(1, nats.MaxWait(wait))
		if err != nil {
			attempts = append(attempts, errText(err).(string))
			continue
		}
		m := msgs[0]
		meta, _ := m.Metadata()
		attempts = append(attempts, fmt.Sprintf("%s#%d", m.Data, meta.NumDelivered))
		if string(m.Data) == "term me" {
			must(m.Term(), "term")
		} else {
			must(m.Nak(), "nak")
		}
	}
	// A nak is not confirmed, so whether the next fetch gets the redelivery or the next new
	// message depends on when the server processed the nak: report the attempts as a set.
	sort.Strings(attempts)
	res["max_deliver_attempts"] = attempts
	// Five advisories: consumer created, two naks, one term, max deliveries reached.
	var advisories []string
	for len(advisories) < 5 {
		m, err := adv.NextMsg(5 * time.Second)
		if err != nil {
			advisories = append(advisories, "stopped waiting: "+err.Error())
			break
		}
		b, err := json.Marshal(advisoryView(m))
		must(err, "marshal advisory")
		advisories = append(advisories, string(b))
	}
	sort.Strings(advisories)
	res["advisories"] = advisories

	// BackOff: redeliveries of a never-acked message follow the list; ack wait is its first entry.
	boc, err := js.AddConsumer("LIM", &nats.ConsumerConfig{Durable: "BO", AckPolicy: nats.AckExplicitPolicy,
		FilterSubject: "lim.bo", MaxDeliver: 3, BackOff: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}})
	must(err, "backoff consumer")
	var backoff []string
	for _, d := range boc.Config.BackOff {
		backoff = append(backoff, d.String())
	}
	res["backoff_config"] = result{"backoff": backoff, "ack_wait": boc.Config.AckWait.String()}
	bo, err := js.PullSubscribe("lim.bo", "BO", nats.Bind("LIM", "BO"))
	must(err, "backoff pull")
	_, err = js.Publish("lim.bo", []byte("never acked"))
	must(err, "publish")
	var counts []uint64
	for len(counts) < 3 {
		msgs, err := bo.Fetch(1, nats.MaxWait(5*time.Second))
		must(err, "backoff fetch")
		md, _ := msgs[0].Metadata()
		counts = append(counts, md.NumDelivered)
	}
	res["backoff_deliveries"] = counts
	_, err = bo.Fetch(1, nats.MaxWait(time.Second))
	res["backoff_after_max"] = errText(err)

	// An ephemeral consumer goes away after its inactive threshold.
	eph, err := js.AddConsumer("LIM", &nats.ConsumerConfig{AckPolicy: nats.AckExplicitPolicy,
		InactiveThreshold: 300 * time.Millisecond})
	must(err, "ephemeral consumer")
	res["ephemeral_threshold"] = eph.Config.InactiveThreshold.String()
	waitFor("inactive ephemeral removed", 10*time.Second, func() bool {
		_, err := js.ConsumerInfo("LIM", eph.Name)
		return errors.Is(err, nats.ErrConsumerNotFound)
	})
	res["ephemeral_removed"] = true

	// Messages older than max age leave the stream.
	_, err = js.AddStream(&nats.StreamConfig{Name: "AGE", Subjects: []string{"age.>"}, MaxAge: 300 * time.Millisecond})
	must(err, "age stream")
	for i := 0; i < 3; i++ {
		_, err := js.Publish("age.x", []byte("old"))
		must(err, "publish")
	}
	var aged *nats.StreamInfo
	waitFor("messages aged out", 10*time.Second, func() bool {
		aged, err = js.StreamInfo("AGE")
		must(err, "stream info")
		return aged.State.Msgs == 0
	})
	res["aged_out"] = result{"msgs": aged.State.Msgs, "first_seq": aged.State.FirstSeq, "last_seq": aged.State.LastSeq}

	// Deny delete / deny purge, then sealing.
	_, err = js.AddStream(&nats.StreamConfig{Name: "LOCKED", Subjects: []string{"locked.>"}, DenyDelete: true,
		DenyPurge: true})
	must(err, "locked stream")
	_, err = js.Publish("locked.x", []byte("keep"))
	must(err, "publish")
	res["deny_delete"] = apiErr(js.DeleteMsg("LOCKED", 1))
	res["deny_purge"] = apiErr(js.PurgeStream("LOCKED"))
	si, err := js.StreamInfo("LOCKED")
	must(err, "stream info")
	cfg := si.Config
	cfg.Sealed = true
	sealed, err := js.UpdateStream(&cfg)
	res["seal"] = result{"error": apiErr(err)}
	if err == nil {
		res["seal"] = result{"sealed": sealed.Config.Sealed}
	}
	_, err = js.Publish("locked.x", []byte("after seal"))
	res["publish_sealed"] = apiErr(err)
	cfg.Sealed = false
	_, err = js.UpdateStream(&cfg)
	res["unseal"] = apiErr(err)

	// Rollups: per subject, then the whole stream; refused where not allowed.
	_, err = js.AddStream(&nats.StreamConfig{Name: "ROLL", Subjects: []string{"roll.>"}, AllowRollup: true})
	must(err, "roll stream")
	for _, subj := range []string{"roll.a", "roll.a", "roll.b", "roll.a"} {
		_, err := js.Publish(subj, []byte("v"))
		must(err, "publish")
	}
	rollup := func(stream, subj, how string) interface{} {
		m := nats.NewMsg(subj)
		m.Header.Set("Nats-Rollup", how)
		m.Data = []byte("rolled " + how)
		a, err := js.PublishMsg(m)
		if err != nil {
			return result{"error": apiErr(err)}
		}
		si, err := js.StreamInfo(stream)
		must(err, "stream info")
		return result{"seq": a.Sequence, "state": stateView(si.State)}
	}
	res["rollup_sub"] = rollup("ROLL", "roll.a", "sub")
	res["rollup_all"] = rollup("ROLL", "roll.b", "all")
	res["rollup_bad_value"] = rollup("ROLL", "roll.b", "everything")
	res["rollup_not_allowed"] = rollup("LIM", "lim.x", "sub")
	return res
}

// ---------------------------------------------------------------- several Kyma subscriptions under load

// scenarioLoad runs three dispatcher-style consumers on one interest-retention stream while
// events are published asynchronously: two for one event type each and one for all of them.
// Every consumer must see each of its events exactly once and in order, and the stream must
// be empty once all three have acked.
func scenarioLoad(url string) result {
	res := result{}
	nc := connect(url, "compat-load-sub")
	defer nc.Close()
	pubc := connect(url, "compat-load-pub")
	defer pubc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	pjs, err := pubc.JetStream(nats.PublishAsyncMaxPending(256))
	must(err, "jetstream pub")
	_, err = js.AddStream(&nats.StreamConfig{Name: "sap", Subjects: []string{"kyma.>"}, Storage: nats.FileStorage,
		Retention: nats.InterestPolicy, Discard: nats.DiscardNew, MaxMsgsPerSubject: 1000000})
	must(err, "add stream")
	filters := map[string]string{"created": "kyma.shop.order.created.v1", "paid": "kyma.shop.order.paid.v1",
		"all": "kyma.shop.>"}
	type seen struct {
		mu        sync.Mutex
		count     int
		dups      int
		outOfSeq  int
		last      uint64
		ids       map[string]bool
		delivered map[uint64]int
	}
	state := map[string]*seen{}
	var names []string
	for name := range filters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := &seen{ids: map[string]bool{}, delivered: map[uint64]int{}}
		state[name] = st
		_, err := js.AddConsumer("sap", &nats.ConsumerConfig{Durable: "load-" + name, DeliverSubject: nats.NewInbox(),
			DeliverPolicy: nats.DeliverNewPolicy, AckPolicy: nats.AckExplicitPolicy, AckWait: 30 * time.Second,
			MaxDeliver: 100, FilterSubject: filters[name], MaxAckPending: 10, FlowControl: true,
			Heartbeat: time.Minute})
		must(err, "add consumer")
		_, err = js.Subscribe(filters[name], func(m *nats.Msg) {
			md, err := m.Metadata()
			must(err, "metadata")
			st.mu.Lock()
			st.count++
			id := m.Header.Get("ce-id")
			if st.ids[id] {
				st.dups++
			}
			st.ids[id] = true
			if md.Sequence.Stream <= st.last {
				st.outOfSeq++
			}
			st.last = md.Sequence.Stream
			st.mu.Unlock()
			_ = m.Ack()
		}, nats.Bind("sap", "load-"+name), nats.ManualAck())
		must(err, "bind")
	}
	const n = 3000
	for i := 0; i < n; i++ {
		kind := "created"
		if i%3 == 0 {
			kind = "paid"
		}
		m := nats.NewMsg("kyma.shop.order." + kind + ".v1")
		m.Header.Set("ce-id", fmt.Sprint(i))
		m.Header.Set("ce-type", "order."+kind+".v1")
		m.Data = []byte(fmt.Sprintf(`{"order":%d}`, i))
		// Acks follow an fsync on our server (nats-server 2.9.10 does not sync by default): on a
		// disk busy with other work a flush can outlast nats.go's 200 ms default stall wait.
		_, err := pjs.PublishMsgAsync(m, nats.StallWait(10*time.Second))
		must(err, "publish async")
	}
	select {
	case <-pjs.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		fail(errors.New("publish async did not complete"))
	}
	want := map[string]int{"created": 2000, "paid": 1000, "all": n}
	for _, name := range names {
		st := state[name]
		waitFor("deliveries for "+name, 60*time.Second, func() bool {
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.count >= want[name]
		})
	}
	waitFor("every consumer acked", 30*time.Second, func() bool {
		for _, name := range names {
			ci, err := js.ConsumerInfo("sap", "load-"+name)
			must(err, "consumer info")
			if ci.NumAckPending != 0 || ci.NumPending != 0 {
				return false
			}
		}
		return true
	})
	per := result{}
	for _, name := range names {
		st := state[name]
		ci, err := js.ConsumerInfo("sap", "load-"+name)
		must(err, "consumer info")
		st.mu.Lock()
		per[name] = result{"received": st.count, "distinct": len(st.ids), "duplicates": st.dups,
			"out_of_order": st.outOfSeq, "delivered_consumer_seq": ci.Delivered.Consumer,
			"ack_floor_consumer_seq": ci.AckFloor.Consumer, "num_redelivered": ci.NumRedelivered}
		st.mu.Unlock()
	}
	res["consumers"] = per
	var si *nats.StreamInfo
	waitFor("interest retention emptied the stream", 10*time.Second, func() bool {
		si, err = js.StreamInfo("sap")
		must(err, "stream info")
		return si.State.Msgs == 0
	})
	res["stream"] = stateView(si.State)
	return res
}

// ---------------------------------------------------------------- dispatcher crash and rebind

// scenarioRebind: a dispatcher takes events and dies before acking any; a new one binds to
// the same durable and gets them again (after the ack wait) along with the rest.
func scenarioRebind(url string) result {
	res := result{}
	admin := connect(url, "compat-rebind-admin")
	defer admin.Close()
	js, err := admin.JetStream()
	must(err, "jetstream")
	_, err = js.AddStream(&nats.StreamConfig{Name: "sap", Subjects: []string{"kyma.>"}, Storage: nats.FileStorage,
		Retention: nats.InterestPolicy})
	must(err, "add stream")
	subject := "kyma.app.order.created.v1"
	_, err = js.AddConsumer("sap", &nats.ConsumerConfig{Durable: "rebind", DeliverSubject: nats.NewInbox(),
		DeliverPolicy: nats.DeliverNewPolicy, AckPolicy: nats.AckExplicitPolicy, AckWait: 2 * time.Second,
		MaxDeliver: 100, FilterSubject: subject, MaxAckPending: 10, FlowControl: true, Heartbeat: time.Minute})
	must(err, "add consumer")
	for i := 0; i < 15; i++ {
		_, err := js.Publish(subject, []byte(fmt.Sprintf("e%02d", i)))
		must(err, "publish")
	}

	// The first dispatcher: takes what max ack pending allows, acks nothing, then dies.
	first := connect(url, "compat-rebind-1")
	fjs, err := first.JetStream()
	must(err, "jetstream 1")
	var mu sync.Mutex
	var firstGot []string
	_, err = fjs.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		firstGot = append(firstGot, string(m.Data))
		mu.Unlock()
	}, nats.Bind("sap", "rebind"), nats.ManualAck())
	must(err, "bind 1")
	waitFor("first dispatcher's share", 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(firstGot) >= 10 })
	ci, err := js.ConsumerInfo("sap", "rebind")
	must(err, "consumer info")
	res["while_first_bound"] = result{"num_ack_pending": ci.NumAckPending, "num_pending": ci.NumPending,
		"push_bound": ci.PushBound}
	first.Close()
	waitFor("unbound after the crash", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", "rebind")
		must(err, "consumer info")
		return !ci.PushBound
	})
	mu.Lock()
	sort.Strings(firstGot)
	res["first_got"] = firstGot
	mu.Unlock()

	// The replacement binds to the same durable and acks everything.
	second := connect(url, "compat-rebind-2")
	defer second.Close()
	sjs, err := second.JetStream()
	must(err, "jetstream 2")
	var secondGot []string
	_, err = sjs.Subscribe(subject, func(m *nats.Msg) {
		md, err := m.Metadata()
		must(err, "metadata")
		mu.Lock()
		secondGot = append(secondGot, fmt.Sprintf("%s#%d", m.Data, md.NumDelivered))
		mu.Unlock()
		_ = m.AckSync()
	}, nats.Bind("sap", "rebind"), nats.ManualAck())
	must(err, "bind 2")
	waitFor("replacement got everything", 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(secondGot) >= 15 })
	waitFor("all acked", 10*time.Second, func() bool {
		ci, err = js.ConsumerInfo("sap", "rebind")
		must(err, "consumer info")
		return ci.NumAckPending == 0 && ci.AckFloor.Stream == 15
	})
	mu.Lock()
	sort.Strings(secondGot)
	res["second_got"] = secondGot
	mu.Unlock()
	res["final"] = result{"ack_floor_stream_seq": ci.AckFloor.Stream, "num_pending": ci.NumPending,
		"num_redelivered": ci.NumRedelivered, "push_bound": ci.PushBound}
	si, err := js.StreamInfo("sap")
	must(err, "stream info")
	res["stream_msgs"] = si.State.Msgs
	return res
}
