"""ONNX control flow (Loop, Scan, If) made countable by rewriting the graph.

A Loop whose trip count is a known constant and whose condition stays true, a Scan whose sequence
length is known and an If whose condition is a known constant are replaced by copies of their
body: the Loop's body once per iteration (the iteration number a constant, the loop-carried
values flowing from one copy to the next, the scan outputs stacked with Unsqueeze + Concat), the
Scan's body once per step on a Gather of that step's slice, the If's taken branch once. The
counting then sees the arithmetic each iteration runs, and weights the body reads are shared by
every copy (counted once, as an unrolled RNN's are).

What cannot be unrolled (a trip count or condition known only at run time, a loop that may exit
early, one that would unroll to more than ``NODE_LIMIT`` nodes) stays as it is; the frontend then
counts it as an uncounted layer that says why (:func:`reasons`), so the result is incomplete,
never silently short.
"""
import numpy as np

NODE_LIMIT = 50_000          # nodes an unrolled graph may gain in all
CONTROL_FLOW = ("Loop", "Scan", "If")


def _subgraphs(node):
    import onnx
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.name, a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            for g in a.graphs:
                yield a.name, g


def _renamed_graph(graph, ren):
    """A copy of subgraph ``graph`` whose references to enclosing-scope names in ``ren`` are
    renamed (recursively; names the subgraph defines itself shadow them)."""
    import onnx
    g = onnx.GraphProto()
    g.CopyFrom(graph)
    _rename_free(g, ren, set())
    return g


def _rename_free(graph, ren, shadow):
    import onnx
    defined = set(shadow) | {v.name for v in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name and name not in defined and name in ren:
                node.input[k] = ren[name]
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _rename_free(a.g, ren, defined)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    _rename_free(sub, ren, defined)
        defined.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in defined and out.name in ren:
            out.name = ren[out.name]


class _Namer:
    def __init__(self, graph):
        self.used = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {
            o for n in graph.node for o in n.output} | {n.name for n in graph.node}

    def __call__(self, base):
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}~{k}"
        self.used.add(name)
        return name


def _copy_nodes(body, ren, prefix, namer, out_nodes):
    """Append copies of ``body``'s nodes to ``out_nodes``: inputs through ``ren`` (names not in
    it are the enclosing scope's), outputs renamed under ``prefix`` and recorded in ``ren``."""
    import onnx
    for k, node in enumerate(body.node):
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = namer(f"{prefix}/{node.name or f'{node.op_type}_{k}'}")
        for j, name in enumerate(node.input):
            if name:
                new.input[j] = ren.get(name, name)
        for j, name in enumerate(node.output):
            if name:
                new.output[j] = ren[name] = namer(f"{prefix}/{name}")
        if any(True for _ in _subgraphs(node)):
            for a in new.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    a.g.CopyFrom(_renamed_graph(a.g, ren))
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for g in a.graphs:
                        g.CopyFrom(_renamed_graph(g, ren))
        out_nodes.append(new)


def _body_initializers(body, prefix, namer, new_inits, ren):
    from onnx import numpy_helper
    for t in body.initializer:
        name = namer(f"{prefix}/{t.name}")
        new_inits.append((name, numpy_helper.to_array(t)))
        ren[t.name] = name


def _const(namer, base, value, new_inits):
    name = namer(base)
    new_inits.append((name, np.asarray(value)))
    return name


def _true_constant(graph, name, ren_inputs, consts, real):
    """Whether ``name`` in ``graph`` is always true: a body input known to be true, an Identity
    of one, a true Constant or initializer, or a true constant of the enclosing graph (the
    TorchScript exporter writes ``Identity(outer true)``)."""
    from onnx import numpy_helper
    seen = 0
    while seen < 50:
        seen += 1
        if name in ren_inputs:
            return True
        init = next((t for t in graph.initializer if t.name == name), None)
        if init is not None:
            v = numpy_helper.to_array(init)
            return v.size == 1 and bool(v.reshape(-1)[0])
        producer = next((n for n in graph.node if name in n.output), None)
        if producer is None:
            if name in {v.name for v in graph.input}:
                return False
            value = _scalar(consts, real, name)
            return value is not None and bool(value)
        if producer.op_type == "Identity":
            name = producer.input[0]
            continue
        if producer.op_type == "Constant":
            for a in producer.attribute:
                if a.name == "value":
                    v = numpy_helper.to_array(a.t)
                    return v.size == 1 and bool(v.reshape(-1)[0])
        return False
    return False


def _scalar(consts, real, name):
    if not name or name not in real:
        return None
    v = np.asarray(consts[name])
    return v.reshape(-1)[0] if v.size == 1 else None


def _unsqueeze(namer, prefix, x, axis, opset, new_inits, nodes):
    from onnx import helper
    out = namer(f"{prefix}/unsqueezed")
    if opset >= 13:
        axes = _const(namer, f"{prefix}/axes", np.array([axis], np.int64), new_inits)
        nodes.append(helper.make_node("Unsqueeze", [x, axes], [out], name=namer(f"{prefix}/unsqueeze")))
    else:
        nodes.append(helper.make_node("Unsqueeze", [x], [out], name=namer(f"{prefix}/unsqueeze"), axes=[axis]))
    return out


def _stack(namer, prefix, parts, axis, out, opset, new_inits, nodes):
    """``out`` = the ``parts`` stacked along a new axis ``axis``."""
    from onnx import helper
    ups = [_unsqueeze(namer, f"{prefix}/{k}", p, axis, opset, new_inits, nodes) for k, p in enumerate(parts)]
    nodes.append(helper.make_node("Concat", ups, [out], name=namer(f"{prefix}/stack"), axis=axis))


def _loop(node, name, consts, real, namer, opset, new_inits):
    """Unrolled copies of a Loop, or a reason string when it cannot be unrolled."""
    from onnx import helper
    body = dict(_subgraphs(node))["body"]
    m_name = node.input[0] if node.input else ""
    c_name = node.input[1] if len(node.input) > 1 else ""
    carried = list(node.input[2:])
    n_carried = len(carried)
    m = _scalar(consts, real, m_name)
    if m is None:
        return ("its trip count is known only at run time" if m_name else "it has no trip count (a while loop)") + \
            ", so its body is not counted"
    cond = True if not c_name else _scalar(consts, real, c_name)
    if cond is None:
        return "its start condition is known only at run time, so its body is not counted"
    cond_in = body.input[1].name if len(body.input) > 1 else ""
    if int(m) > 0 and bool(cond) and not _true_constant(body, body.output[0].name, {cond_in}, consts, real):
        return f"it may exit early (its loop condition depends on data; at most {int(m)} iterations), so its " \
               "body is not counted"
    trips = int(m) if bool(cond) else 0
    n_scan = len(body.output) - 1 - n_carried
    if trips * max(len(body.node), 1) > NODE_LIMIT:
        return f"unrolling its {trips} iterations of {len(body.node)} nodes would exceed {NODE_LIMIT} nodes, so its " \
               "body is not counted"
    if trips == 0 and n_scan:
        return "it runs zero iterations but has scan outputs, which are empty"
    nodes, shared = [], {}
    _body_initializers(body, f"{name}", namer, new_inits, shared)
    true = _const(namer, f"{name}/true", np.array(True), new_inits)
    scans = [[] for _ in range(n_scan)]
    for t in range(trips):
        ren = dict(shared)
        ren[body.input[0].name] = _const(namer, f"{name}/{t}/iter", np.array(t, np.int64), new_inits)
        if len(body.input) > 1:
            ren[body.input[1].name] = true
        for j, v in enumerate(body.input[2:]):
            ren[v.name] = carried[j]
        _copy_nodes(body, ren, f"{name}/{t}", namer, nodes)
        carried = [ren.get(o.name, o.name) for o in body.output[1:1 + n_carried]]
        for k, o in enumerate(body.output[1 + n_carried:]):
            scans[k].append(ren.get(o.name, o.name))
    for j, out in enumerate(node.output[:n_carried]):
        if out:
            nodes.append(helper.make_node("Identity", [carried[j]], [out], name=namer(f"{name}/out{j}")))
    for k, out in enumerate(node.output[n_carried:]):
        if out:
            _stack(namer, f"{name}/scan{k}", scans[k], 0, out, opset, new_inits, nodes)
    return nodes


def _attr_ints(node, key):
    for a in node.attribute:
        if a.name == key:
            return list(a.ints)
    return None


def _scan(node, name, shapes, namer, opset, new_inits):
    """Unrolled copies of a Scan (opset 9+), or a reason string."""
    from onnx import helper
    body = dict(_subgraphs(node))["body"]
    n_in = next((a.i for a in node.attribute if a.name == "num_scan_inputs"), 0)
    n_state = len(node.input) - n_in
    if opset < 9 or n_in < 1 or n_state < 0:
        return "a Scan of opset 8 or without scan inputs is not supported, so its body is not counted"
    in_axes = _attr_ints(node, "scan_input_axes") or [0] * n_in
    in_dirs = _attr_ints(node, "scan_input_directions") or [0] * n_in
    n_out = len(body.output) - n_state
    out_axes = _attr_ints(node, "scan_output_axes") or [0] * n_out
    out_dirs = _attr_ints(node, "scan_output_directions") or [0] * n_out
    length = None
    for k, x in enumerate(node.input[n_state:]):
        shape = shapes.get(x)
        if shape is None or not shape or not -len(shape) <= in_axes[k] < len(shape):
            return "its sequence length is not known, so its body is not counted"
        n = shape[in_axes[k] % len(shape)]
        if n is None or (length is not None and n != length):
            return "its sequence length is not known, so its body is not counted"
        length = n
    if length * max(len(body.node), 1) > NODE_LIMIT:
        return f"unrolling its {length} steps of {len(body.node)} nodes would exceed {NODE_LIMIT} nodes, so its body " \
               "is not counted"
    if length == 0:
        return "its sequence is empty"
    nodes, shared = [], {}
    _body_initializers(body, name, namer, new_inits, shared)
    state = list(node.input[:n_state])
    outs = [[] for _ in range(n_out)]
    for t in range(length):
        ren = dict(shared)
        for j, v in enumerate(body.input[:n_state]):
            ren[v.name] = state[j]
        for k, v in enumerate(body.input[n_state:]):
            x = node.input[n_state + k]
            step = length - 1 - t if in_dirs[k] else t
            idx = _const(namer, f"{name}/{t}/index{k}", np.array(step, np.int64), new_inits)
            part = namer(f"{name}/{t}/{v.name}")
            nodes.append(helper.make_node("Gather", [x, idx], [part], name=namer(f"{name}/{t}/slice{k}"),
                                          axis=in_axes[k] % len(shapes[x])))
            ren[v.name] = part
        _copy_nodes(body, ren, f"{name}/{t}", namer, nodes)
        state = [ren.get(o.name, o.name) for o in body.output[:n_state]]
        for k, o in enumerate(body.output[n_state:]):
            outs[k].append(ren.get(o.name, o.name))
    for j, out in enumerate(node.output[:n_state]):
        if out:
            nodes.append(helper.make_node("Identity", [state[j]], [out], name=namer(f"{name}/out{j}")))
    for k, out in enumerate(node.output[n_state:]):
        if out:
            parts = outs[k][::-1] if out_dirs[k] else outs[k]
            axis = out_axes[k]
            if axis < 0:
                rank = len(shapes.get(body.output[n_state + k].name) or ()) or None
                if rank is None:
                    return "its scan output axis is negative and the rank of its output is not known"
                axis += rank + 1
            _stack(namer, f"{name}/scan{k}", parts, axis, out, opset, new_inits, nodes)
    return nodes


def _if(node, name, consts, real, namer):
    from onnx import helper
    cond = _scalar(consts, real, node.input[0] if node.input else "")
    if cond is None:
        return "its condition is known only at run time, so neither branch is counted"
    branch = dict(_subgraphs(node))["then_branch" if bool(cond) else "else_branch"]
    nodes, ren, new_inits = [], {}, []
    _body_initializers(branch, name, namer, new_inits, ren)
    _copy_nodes(branch, ren, name, namer, nodes)
    for k, out in enumerate(node.output):
        if out:
            src = branch.output[k].name
            nodes.append(helper.make_node("Identity", [ren.get(src, src)], [out], name=namer(f"{name}/out{k}")))
    return nodes, new_inits


def unroll(model, shapes, consts, real, opset):
    """Rewrite ``model.graph`` in place, unrolling what can be (see the module docstring).

    Returns ``(changed, new_initializers, reasons)``: ``new_initializers`` ``[(name, array)]``
    were added to the graph, ``reasons`` maps each control-flow node left in place (by its index
    name) to why it was not unrolled."""
    from onnx import numpy_helper
    graph = model.graph
    namer = _Namer(graph)
    out_nodes, added, reasons, changed = [], [], {}, False
    budget = NODE_LIMIT
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if node.op_type not in CONTROL_FLOW or node.domain not in ("", "ai.onnx"):
            out_nodes.append(node)
            continue
        new_inits = []
        if node.op_type == "Loop":
            got = _loop(node, name, consts, real, namer, opset, new_inits)
        elif node.op_type == "Scan":
            got = _scan(node, name, shapes, namer, opset, new_inits)
        else:
            got = _if(node, name, consts, real, namer)
            if not isinstance(got, str):
                got, new_inits = got
        if not isinstance(got, str) and len(got) > budget:
            got = f"unrolling it would exceed {NODE_LIMIT} nodes, so its body is not counted"
        if isinstance(got, str):
            reasons[name] = got
            out_nodes.append(node)
            continue
        budget -= len(got)
        out_nodes.extend(got)
        added.extend(new_inits)
        changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(out_nodes)
        for name, value in added:
            graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return changed, added, reasons
