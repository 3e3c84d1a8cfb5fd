"""The eventing config file: Kyma's Eventing CR settings and ours, overridden by env then flags.

Covers the sample in examples/, the order file < env < flags, refusals that name the key for
every kind of bad input, and a real `pyjetstream eventing --config FILE` process creating the
configured stream on both engines.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import nats
import nats.js.errors
import pytest
from servers import free_port

from pyjetstream.cli import eventing_cmd, up
from pyjetstream.eventing.config import (
    ConfigError,
    EventingConfig,
    from_document,
    from_env,
    load_file,
)
from pyjetstream.eventing.egress import SinkPolicy
from pyjetstream.eventing.testing import wait_until

from .conftest import VENV_BIN

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "eventing-config.yaml"


def _v(value):
    return getattr(value, "value", value)


def test_sample_file_loads_with_the_documented_values():
    cfg = load_file(str(SAMPLE))
    default = EventingConfig()
    # Everything the sample shows as a default is the default...
    assert cfg.stream == default.stream
    assert cfg.consumer == default.consumer
    assert cfg.retry == default.retry
    assert cfg.dead_letter == default.dead_letter
    assert cfg.sink_policy == default.sink_policy
    assert (cfg.legacy_type_prefix, cfg.legacy_namespace, cfg.publish_host, cfg.publish_port,
            cfg.max_request_size, cfg.publish_timeout, cfg.dedupe, cfg.strict_sinks, cfg.delivery_profile) == \
        (default.legacy_type_prefix, default.legacy_namespace, default.publish_host, default.publish_port,
         default.max_request_size, default.publish_timeout, default.dedupe, default.strict_sinks,
         default.delivery_profile)
    # ...and the one example mapping is read.
    assert cfg.application_types == {"myapp": "mytype"}


def test_kyma_eventing_cr_backend_block_as_written_in_a_cluster():
    doc = {"backend": {"natsStreamStorageType": "Memory", "natsStreamReplicas": 3, "natsStreamMaxSize": "1Gi",
                       "natsMaxMsgsPerTopic": 500, "eventTypePrefix": "acme.custom"},
           "stream": {"name": "events", "retentionPolicy": "limits", "maxMessages": 1000, "discardPolicy": "old"},
           "consumer": {"deliverPolicy": "all", "maxInFlightMessages": 4},
           "publisher": {"port": 9090, "maxRequestSize": "128Ki", "requestTimeout": "PT10S", "dedupe": True},
           "delivery": {"profile": "kyma", "deadLetter": False, "noRetryStatusCodes": [400, 413],
                        "backoffDelay": "500ms"},
           "sinks": {"policy": "public", "allow": ["10.0.0.0/8"], "kymaStrict": True},
           "applications": {"app-1": "commerce"}}
    cfg = from_document(doc)
    s = cfg.stream
    assert (s.storage, s.replicas, s.max_bytes, s.max_msgs_per_subject) == ("memory", 3, 1024**3, 500)
    assert (s.name, s.retention, s.max_msgs, s.discard) == ("events", "limits", 1000, "old")
    assert cfg.legacy_type_prefix == "acme.custom"
    assert (cfg.consumer.deliver_policy, cfg.consumer.max_in_flight) == ("all", 4)
    assert (cfg.publish_port, cfg.max_request_size, cfg.publish_timeout, cfg.dedupe) == (9090, 131072, 10.0, True)
    assert cfg.delivery_profile == "kyma" and not cfg.dead_letter.enabled
    assert cfg.retry.no_retry_codes == frozenset({400, 413}) and cfg.retry.initial_delay == 0.5
    assert cfg.sink_policy == SinkPolicy("public", ("10.0.0.0/8",)) and cfg.strict_sinks
    assert cfg.application_types == {"app-1": "commerce"}
    assert s.config_dict()["storage"] == "memory"


@pytest.mark.parametrize("doc,key,reason", [
    ({"backend": {"natsStreamStorageType": "Disk"}}, "backend.natsStreamStorageType", "file, memory"),
    ({"backend": {"natsStreamReplicas": 0}}, "backend.natsStreamReplicas", "between 1 and 5"),
    ({"backend": {"natsStreamReplicas": "three"}}, "backend.natsStreamReplicas", "integer"),
    ({"backend": {"natsStreamReplicas": True}}, "backend.natsStreamReplicas", "integer"),
    ({"backend": {"natsStreamMaxSize": "700Mo"}}, "backend.natsStreamMaxSize", "size"),
    ({"backend": {"natsStreamMaxSize": 0}}, "backend.natsStreamMaxSize", "-1"),
    ({"backend": {"natsMaxMsgsPerTopic": -7}}, "backend.natsMaxMsgsPerTopic", "-1"),
    ({"backend": {"eventTypePrefix": ""}}, "backend.eventTypePrefix", "non-empty"),
    ({"backend": {"eventTypePrefix": "sap..custom"}}, "backend.eventTypePrefix", "dot-separated"),
    ({"backend": {"natsStreamStorage": "File"}}, "backend.natsStreamStorage", "unknown key"),
    ({"stream": {"name": "x" * 33}}, "stream.name", "max 32 characters"),
    ({"stream": {"name": "sap.events"}}, "stream.name", "must not contain"),
    ({"stream": {"subjectPrefix": "kyma.>"}}, "stream.subjectPrefix", "one subject token"),
    ({"stream": {"retentionPolicy": "workqueue"}}, "stream.retentionPolicy", "interest, limits"),
    ({"consumer": {"deliverPolicy": "bogus"}}, "consumer.deliverPolicy", "last_per_subject"),
    ({"consumer": {"maxInFlightMessages": 0}}, "consumer.maxInFlightMessages", "at least 1"),
    ({"publisher": {"port": 70000}}, "publisher.port", "between 0 and 65535"),
    ({"publisher": {"requestTimeout": "soon"}}, "publisher.requestTimeout", "duration"),
    ({"publisher": {"requestTimeout": 0}}, "publisher.requestTimeout", "positive"),
    ({"publisher": {"dedupe": "yes"}}, "publisher.dedupe", "true or false"),
    ({"publisher": {"maxRequestSize": -1}}, "publisher.maxRequestSize", "positive"),
    ({"delivery": {"profile": "knative"}}, "delivery.profile", "default, kyma"),
    ({"delivery": {"noRetryStatusCodes": [600]}}, "delivery.noRetryStatusCodes", "not an HTTP status"),
    ({"delivery": {"backoffDelay": "-1s"}}, "delivery.backoffDelay", "duration"),
    ({"sinks": {"allow": ["10.0.0.0/33"]}}, "sinks.allow", "not a CIDR or host name"),
    ({"sinks": {"policy": "open"}}, "sinks.policy", "default, public"),
    ({"applications": ["myapp"]}, "applications", "must map"),
    ({"applications": {"my/app": "t"}}, "applications", "not an application name"),
    ({"applications": {"myapp": "my type"}}, "applications.myapp", "label value"),
    ({"applications": {"myapp": ""}}, "applications.myapp", "label value"),
    ({"applications": {"myapp": "x" * 64}}, "applications.myapp", "at most 63"),
    ({"publishers": {}}, "publishers", "unknown section"),
    ({"stream": ["name", "sap"]}, "stream", "mapping of keys"),
])
def test_bad_keys_and_values_are_refused_naming_the_key(doc, key, reason):
    with pytest.raises(ConfigError) as err:
        from_document(doc)
    assert str(err.value).startswith(f"{key}:") and reason in str(err.value)


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"eventing config {missing}: "):
        load_file(str(missing))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("backend: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file(str(bad_yaml))
    not_a_map = tmp_path / "list.yaml"
    not_a_map.write_text("- backend\n")
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        load_file(str(not_a_map))
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n")
    assert load_file(str(empty)) == EventingConfig()


@pytest.mark.parametrize("env,name,reason", [
    ({"JS_STREAM_REPLICAS": "x"}, "JS_STREAM_REPLICAS", "integer"),
    ({"JS_STREAM_STORAGE_TYPE": "disk"}, "JS_STREAM_STORAGE_TYPE", "file, memory"),
    ({"JS_STREAM_MAX_BYTES": "lots"}, "JS_STREAM_MAX_BYTES", "size"),
    ({"JS_STREAM_RETENTION_POLICY": "workqueue"}, "JS_STREAM_RETENTION_POLICY", "interest, limits"),
    ({"JS_STREAM_NAME": "x" * 40}, "JS_STREAM_NAME", "max 32"),
    ({"REQUEST_TIMEOUT": "forever"}, "REQUEST_TIMEOUT", "duration"),
])
def test_bad_environment_values_name_the_variable(env, name, reason):
    with pytest.raises(ConfigError) as err:
        from_env(env)
    assert str(err.value).startswith(f"{name}:") and reason in str(err.value)


def test_kyma_environment_names_are_read():
    cfg = from_env({"JS_STREAM_NAME": "ev", "JS_STREAM_SUBJECT_PREFIX": "k", "JS_STREAM_STORAGE_TYPE": "Memory",
                    "JS_STREAM_REPLICAS": "3", "JS_STREAM_RETENTION_POLICY": "limits", "JS_STREAM_MAX_MSGS": "9",
                    "JS_STREAM_MAX_BYTES": "1Gi", "JS_STREAM_MAX_MSGS_PER_TOPIC": "7",
                    "JS_STREAM_DISCARD_POLICY": "old", "JS_CONSUMER_DELIVER_POLICY": "unknown",
                    "DEFAULT_MAX_IN_FLIGHT_MESSAGES": "3", "EVENT_TYPE_PREFIX": "a.b", "LEGACY_NAMESPACE": "ns",
                    "REQUEST_TIMEOUT": "10s", "UNRELATED": "x"})
    s = cfg.stream
    assert (s.name, s.subject_prefix, s.storage, s.replicas, s.retention, s.max_msgs, s.max_bytes,
            s.max_msgs_per_subject, s.discard) == ("ev", "k", "memory", 3, "limits", 9, 1024**3, 7, "old")
    assert cfg.consumer.deliver_policy == "new"  # Kyma falls back to `new`
    assert (cfg.consumer.max_in_flight, cfg.legacy_type_prefix, cfg.legacy_namespace, cfg.publish_timeout) == \
        (3, "a.b", "ns", 10.0)


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "eventing.yaml"
    path.write_text(text)
    return str(path)


FILE = """
backend: {natsStreamReplicas: 3, natsStreamStorageType: Memory, natsStreamMaxSize: 1Gi}
stream: {retentionPolicy: limits}
publisher: {port: 9001, host: 127.0.0.2}
applications: {myapp: mytype, other: othertype}
delivery: {profile: kyma, deadLetter: false}
sinks: {policy: public, allow: [10.0.0.0/8]}
"""


def test_file_then_env_then_flags(tmp_path):
    path = _write(tmp_path, FILE)
    parser = eventing_cmd.build_parser()
    only_file = eventing_cmd.config_from_args(parser.parse_args(["--config", path]), env={})
    assert (only_file.stream.replicas, only_file.stream.storage, only_file.publish_port) == (3, "memory", 9001)
    assert only_file.delivery_profile == "kyma" and not only_file.dead_letter.enabled
    assert only_file.sink_policy == SinkPolicy("public", ("10.0.0.0/8",))

    env = {"JS_STREAM_REPLICAS": "2", "JS_STREAM_STORAGE_TYPE": "file"}
    with_env = eventing_cmd.config_from_args(parser.parse_args(["--config", path]), env=env)
    assert (with_env.stream.replicas, with_env.stream.storage) == (2, "file")
    assert with_env.stream.retention == "limits"  # the file still counts where env is silent

    argv = ["--config", path, "--stream-replicas", "1", "--publish-port", "9002", "--delivery-profile", "default",
            "--application-type", "myapp=flagtype", "--sink-policy", "default", "--sink-allow", "192.168.0.0/16"]
    with_flags = eventing_cmd.config_from_args(parser.parse_args(argv), env=env)
    assert (with_flags.stream.replicas, with_flags.stream.storage) == (1, "file")
    assert with_flags.publish_port == 9002 and with_flags.publish_host == "127.0.0.2"
    assert with_flags.delivery_profile == "default"
    assert with_flags.application_types == {"myapp": "flagtype", "other": "othertype"}
    assert with_flags.sink_policy == SinkPolicy("default", ("192.168.0.0/16",))
    assert not with_flags.dead_letter.enabled  # no flag given: the file's value stays


def test_flags_without_a_file_keep_the_defaults_they_do_not_touch():
    cfg = eventing_cmd.config_from_args(eventing_cmd.build_parser().parse_args([]), env={})
    assert cfg == EventingConfig(publish_tokens=cfg.publish_tokens)


@pytest.mark.parametrize("argv,flag", [
    (["--stream-replicas", "0"], "--stream-replicas"),
    (["--stream-max-bytes", "huge"], "--stream-max-bytes"),
    (["--application-type", "myapp"], "--application-type"),
    (["--application-type", "myapp=bad type"], "--application-type.myapp"),
    (["--publish-port", "http"], "--publish-port"),
])
def test_bad_flags_name_the_flag(argv, flag):
    with pytest.raises(ConfigError) as err:
        eventing_cmd.config_from_args(eventing_cmd.build_parser().parse_args(argv), env={})
    assert str(err.value).startswith(f"{flag}:")


def test_both_commands_refuse_to_start_with_the_key_named(tmp_path, capsys):
    path = _write(tmp_path, "backend:\n  natsStreamStorageType: Tape\n")
    assert eventing_cmd.main(["--config", path, "--nats", "nats://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert f"eventing config {path}: backend.natsStreamStorageType: must be one of file, memory" in err
    assert up.main(["--eventing-config", path, "-p", "-1"]) == 2
    assert "backend.natsStreamStorageType" in capsys.readouterr().err


def test_up_routes_the_new_flags_to_the_eventing_side():
    server, eventing = up.split_argv(["-p", "1", "--eventing-config", "e.yaml", "-c", "server.conf",
                                      "--delivery-profile", "kyma", "--application-type=a=b"])
    assert server == ["-p", "1", "-c", "server.conf"]
    assert eventing == ["--eventing-config", "e.yaml", "--delivery-profile", "kyma", "--application-type=a=b"]


async def test_eventing_process_creates_the_stream_the_file_configures(nats_server, tmp_path):
    """`pyjetstream eventing --config FILE` as a real process, against both engines."""
    port = free_port()
    path = _write(tmp_path, f"""
backend: {{natsStreamStorageType: Memory, natsStreamMaxSize: 8Mi, natsMaxMsgsPerTopic: 77}}
stream: {{name: filestream, maxMessages: 5000, discardPolicy: old}}
publisher: {{port: {port}}}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JS_", "EVENT_TYPE_PREFIX"))}
    env["JS_STREAM_MAX_MSGS"] = "4000"  # the environment beats the file
    proc = subprocess.Popen([str(VENV_BIN / "pyjetstream"), "eventing", "--config", path, "--nats", nats_server.url,
                             "--stream-max-msgs", "3000"],  # and the flag beats both
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()

        async def stream_exists():
            try:
                return await js.stream_info("filestream")
            except nats.js.errors.NotFoundError:
                return None
        try:
            await wait_until(stream_exists, timeout=20, what="the configured stream")
        except TimeoutError:
            proc.kill()
            raise AssertionError(proc.communicate(timeout=5)[1].decode(errors="replace")[-3000:]) from None
        cfg = (await js.stream_info("filestream")).config
        assert _v(cfg.storage) == "memory" and cfg.max_bytes == 8 * 1024**2 and cfg.max_msgs_per_subject == 77
        assert cfg.max_msgs == 3000 and _v(cfg.discard) == "old"
    finally:
        await nc.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 0
