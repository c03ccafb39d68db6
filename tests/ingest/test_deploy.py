"""The deploy files stay true to the programs."""
import configparser
import os
import re
import subprocess

from fdodtest import FDOD, ROOT


def test_example_config_is_every_option_with_its_default():
    """deploy/fdod.conf.example is `fdod --print-config`: regenerate it
    with `build/fdod --print-config > deploy/fdod.conf.example`."""
    p = subprocess.run([FDOD, "--print-config"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with open(os.path.join(ROOT, "deploy", "fdod.conf.example")) as f:
        assert f.read() == p.stdout
    # And fdod accepts it as a config file.
    p = subprocess.run([FDOD, "--config",
                        os.path.join(ROOT, "deploy", "fdod.conf.example"),
                        "--print-config"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_units_name_the_real_options():
    for unit in ("fdod.service", "fdo-agent.service", "fdo-agent@.service"):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.read(os.path.join(ROOT, "deploy", unit))
        svc = cp["Service"]
        assert svc["ProtectSystem"] == "strict"
        assert svc["NoNewPrivileges"] == "yes"
        # Options of other commands inside $(...) are not ours.
        exe = re.sub(r"\$\([^)]*\)", "", svc["ExecStart"])
        prog = "fdod" if unit == "fdod.service" else "fdo-agent"
        helptext = subprocess.run([os.path.join(ROOT, "build", prog),
                                   "--help"], capture_output=True,
                                  text=True, timeout=60).stdout
        for word in exe.replace("'", " ").replace('"', " ").split():
            if word.startswith("--"):
                assert word in helptext, (unit, word)
    agent = configparser.ConfigParser(strict=False, interpolation=None)
    agent.read(os.path.join(ROOT, "deploy", "fdo-agent@.service"))
    assert set(agent["Service"]["CapabilityBoundingSet"].split()) == \
        {"CAP_PERFMON", "CAP_SYS_PTRACE"}
    host = configparser.ConfigParser(strict=False, interpolation=None)
    host.read(os.path.join(ROOT, "deploy", "fdo-agent.service"))
    svc = host["Service"]
    # The host's agent samples every process by default, and its lock
    # lives in the runtime directory the unit owns.
    assert " --all" in svc["ExecStart"]
    assert "/run/%s/" % svc["RuntimeDirectory"] in svc["ExecStart"]
    assert set(svc["CapabilityBoundingSet"].split()) == \
        {"CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_CHECKPOINT_RESTORE",
         "CAP_DAC_READ_SEARCH"}
    assert svc["AmbientCapabilities"] == svc["CapabilityBoundingSet"]
    fdod = configparser.ConfigParser(strict=False, interpolation=None)
    fdod.read(os.path.join(ROOT, "deploy", "fdod.service"))
    assert fdod["Service"]["StateDirectory"] == "fdod"

