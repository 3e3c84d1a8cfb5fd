// Stream-side JetStream calls through nats.go; prints what it sees so two servers can be compared.

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

func must(err error, what string) {
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	nc, err := nats.Connect(os.Args[1])
	must(err, "connect")
	defer nc.Close()
	js, err := nc.JetStream()
	must(err, "jetstream")
	si, err := js.AddStream(&nats.StreamConfig{Name: "GO", Subjects: []string{"go.>"}, AllowDirect: true, MaxMsgsPerSubject: 3})
	must(err, "add stream")
	fmt.Println("created", si.Config.Name, si.Config.Storage, si.Config.Duplicates)
	for i := 0; i < 5; i++ {
		ack, err := js.Publish("go.a", []byte(fmt.Sprintf("m%d", i)), nats.MsgId(fmt.Sprintf("id%d", i)))
		must(err, "publish")
		fmt.Println("ack", ack.Stream, ack.Sequence, ack.Duplicate)
	}
	ack, err := js.Publish("go.a", []byte("dup"), nats.MsgId("id4"))
	must(err, "publish dup")
	fmt.Println("dup", ack.Sequence, ack.Duplicate)
	_, err = js.Publish("go.b", []byte("x"), nats.ExpectLastSequence(99))
	fmt.Println("expect err:", err)
	m, err := js.GetMsg("GO", 3)
	must(err, "get msg")
	fmt.Println("get", m.Subject, m.Sequence, string(m.Data))
	lm, err := js.GetLastMsg("GO", "go.a", nats.DirectGet())
	must(err, "direct get last")
	fmt.Println("direct last", lm.Sequence, string(lm.Data), lm.Header.Get("Nats-Stream"))
	name, err := js.StreamNameBySubject("go.zzz")
	must(err, "name by subject")
	fmt.Println("by subject", name)
	must(js.DeleteMsg("GO", 4), "delete msg")
	info, err := js.StreamInfo("GO")
	must(err, "info")
	fmt.Println("state", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.NumDeleted)
	must(js.PurgeStream("GO", &nats.StreamPurgeRequest{Subject: "go.a", Keep: 1}), "purge")
	for n := range js.StreamNames() {
		fmt.Println("name", n)
	}
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "gokv", History: 2, TTL: time.Minute})
	must(err, "kv")
	_, err = kv.Put("k", []byte("v"))
	must(err, "kv put")
	e, err := kv.Get("k")
	must(err, "kv get")
	fmt.Println("kv", string(e.Value()), e.Revision())
	_, err = kv.Create("k", []byte("v2"))
	fmt.Println("kv create existing:", err)
	must(kv.Delete("k"), "kv delete")
	_, err = kv.Get("k")
	fmt.Println("kv get deleted:", err)
	must(js.DeleteStream("GO"), "delete stream")
	_, err = js.StreamInfo("GO")
	fmt.Println("after delete:", err)
	fmt.Println("OK")
}
