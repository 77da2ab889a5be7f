"""_core.set_skip_backward: SequentialScheduler.backward() honours it, and it logs nothing.

It used Aidge's deprecated Node::attributes(), which logged a deprecation warning on
every call (about 1,800 lines for a 1-epoch LwM run). Aidge logs from C++, past
Python's sys.stderr, so the check runs a child process and reads what it wrote to its
file descriptors 1 and 2.
"""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json
    import numpy as np
    import aidge_incremental  # noqa: F401  (before aidge_core, as users do)
    import aidge_core
    from aidge_incremental import _core

    rng = np.random.default_rng(0)
    fc1, fc2 = aidge_core.FC(4, 5, name="fc1"), aidge_core.FC(5, 3, name="fc2")
    fc1.add_child(fc2, 0, 0)
    graph = aidge_core.GraphView()
    graph.add(fc1)
    graph.add(fc2)
    graph.compile("cpu", aidge_core.dtype.float32, dims=[[2, 4]])
    for node in (fc1, fc2):
        aidge_core.xavier_uniform_filler(node.get_operator().get_input(1))
    scheduler = aidge_core.SequentialScheduler(graph)
    x = aidge_core.Tensor(rng.standard_normal((2, 4)).astype(np.float32))

    def weight_grad_norms(skip):
        for _ in range(3):  # several calls: a warning per call would show
            _core.set_skip_backward(fc1, skip)
        scheduler.forward(data=[x])
        out = fc2.get_operator().get_output(0)
        out.grad.copy_from(aidge_core.Tensor(np.ones((2, 3), np.float32)))
        scheduler.backward()
        return [float(np.abs(np.array(n.get_operator().get_input(1).grad)).sum()) for n in (fc1, fc2)]

    print(json.dumps({"skipped": weight_grad_norms(True), "not_skipped": weight_grad_norms(False)}))
""")


def test_set_skip_backward_is_honoured_and_silent(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for stream in (result.stderr, result.stdout):
        assert "deprecated" not in stream.lower(), stream[:2000]
        assert "attributes()" not in stream, stream[:2000]
    norms = json.loads(result.stdout.strip().splitlines()[-1])
    fc1_skipped, fc2_skipped = norms["skipped"]
    assert fc1_skipped == 0.0 and fc2_skipped > 0.0, norms  # fc1's backward did not run
    assert all(g > 0.0 for g in norms["not_skipped"]), norms
