"""`pyjetstream up` argument handling: server flags vs eventing flags, and the tutorial defaults."""

import pytest

from pyjetstream.cli import up
from pyjetstream.cli.eventing_cmd import build_parser, config_from_args


def test_split_keeps_values_with_their_flags():
    server, eventing = up.split_argv(["-p", "1", "--publish-port", "8081", "-sd", "d", "--kyma-strict-sinks",
                                      "--stream-replicas=3", "--stream-storage", "memory"])
    assert server == ["-p", "1", "-sd", "d"]
    assert eventing == ["--publish-port", "8081", "--kyma-strict-sinks", "--stream-replicas=3",
                        "--stream-storage", "memory"]


def test_defaults_only_where_unset(tmp_path):
    pytest.importorskip("pyjetstream.server.options")
    assert up.with_defaults([]) == ["-js", "-m", "8222", "-sd", "./data"]
    assert up.with_defaults(["-js", "-m", "9", "-sd", "/x"]) == ["-js", "-m", "9", "-sd", "/x"]
    conf = tmp_path / "s.conf"
    conf.write_text('http_port: 8300\njetstream { store_dir: "%s" }\n' % (tmp_path / "js"))
    assert up.with_defaults(["-c", str(conf)]) == ["-c", str(conf)]


def test_eventing_flags_map_to_config():
    args = build_parser().parse_args(["--publish-port", "9", "--stream-max-bytes", "1Gi", "--stream-retention",
                                      "limits", "--deliver-policy", "bogus", "--dedupe", "--no-dead-letter",
                                      "--stream-replicas", "3"])
    cfg = config_from_args(args)
    assert cfg.publish_port == 9 and cfg.dedupe and not cfg.dead_letter.enabled
    assert cfg.stream.max_bytes == 1024**3 and cfg.stream.retention == "limits" and cfg.stream.replicas == 3
    assert cfg.consumer.deliver_policy == "new"  # Kyma falls back to `new` for unknown values


def test_stream_name_limit():
    with pytest.raises(ValueError, match="max 32 characters"):
        config_from_args(build_parser().parse_args(["--stream-name", "x" * 33]))
