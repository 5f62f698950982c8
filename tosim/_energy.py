"""Joules and carbon of a scored workload: the one place a device's fitted model is applied.

:func:`resolve_device` finds a profile's device by name; :func:`energy_joules` evaluates its
polynomial on the workload's feature (TOs, FLOPs or MACs; :func:`calibrate.predict`);
:func:`apply_energy` fills ``energy_j`` and ``gco2e`` of scored rows. :func:`tosim.score`,
``tosim score`` and ``tosim sweep`` all go through these functions, so a change of the device
model (or a check of the range it was fitted on) belongs here.

Carbon follows CodeCarbon's method (frasca2024 lecture): grams CO2e = energy in kWh (joules /
3.6e6) x the grid's carbon intensity in g/kWh, the profile's ``carbon.grid_gco2_per_kwh``
(475, the world average CodeCarbon uses, in the built-in profiles) unless overridden.
"""
import difflib
import math

from ._errors import ScoreError

__all__ = ["J_PER_KWH", "DeviceError", "resolve_device", "energy_joules", "carbon_grams", "apply_energy",
           "FIT_MARGIN", "FEATURE_LABELS", "outside_fit", "extrapolation_warning"]

J_PER_KWH = 3.6e6
#: A workload whose feature lies more than this factor below or above the device's
#: ``fitted_range`` gets an energy flagged as an extrapolation.
FIT_MARGIN = 10.0
#: How a polynomial device's feature is written in messages.
FEATURE_LABELS = {"tos": "TOs", "flops": "FLOPs", "macs": "MACs"}


class DeviceError(ScoreError):
    """A device that the profile does not have (or a malformed device mapping)."""


def is_energy_model(device):
    """Whether a profile device mapping holds an energy model (else it is a polynomial)."""
    return isinstance(device, dict) and "energy_model" in device


def resolve_device(profile, device):
    """The device mapping of ``profile`` named ``device`` (a mapping is returned as given after a
    check of its keys); a one-line :class:`DeviceError` with a did-you-mean when the profile has
    none of that name."""
    if isinstance(device, dict) and "energy_model" in device:
        import calibrate
        try:
            calibrate.EnergyModel.from_dict(device["energy_model"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise DeviceError(f"a device energy model mapping is malformed: {exc}") from None
        return device
    if isinstance(device, dict):
        missing = [k for k in ("feature", "coefficients") if k not in device]
        if missing:
            raise DeviceError(f"a device mapping needs {' and '.join(missing)} "
                              "(e.g. {'feature': 'tos', 'coefficients': [c0, c1]})")
        if device["feature"] not in ("tos", "flops", "macs"):
            raise DeviceError(f"device feature must be tos, flops or macs, not {device['feature']!r}")
        coefficients = device["coefficients"]
        if (not isinstance(coefficients, (list, tuple)) or not coefficients
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                           for c in coefficients)):
            raise DeviceError(f"device coefficients must be a non-empty list of finite numbers, not {coefficients!r}")
        return device
    name = device
    devices = profile.devices or {}
    if name in devices:
        return devices[name]
    if not devices:
        raise DeviceError(f"profile {profile.name!r} has no devices, so there is no {name!r}; "
                          "a profile with fitted devices (e.g. li2022) or tosim fit gives them")
    close = difflib.get_close_matches(str(name), list(devices), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DeviceError(f"profile {profile.name!r} has no device {name!r}{hint} "
                      f"(devices: {', '.join(sorted(devices))})")


def energy_joules(device, tos, flops, macs):
    """Joules of a device's fitted polynomial E = c0 + c1 x + c2 x^2 + ... (:func:`calibrate.predict`),
    x its feature (TOs, FLOPs or MACs); works on numbers and numpy arrays. A device energy model
    needs the per-layer features of :func:`apply_energy` instead (DeviceError)."""
    import calibrate
    if "energy_model" in device:
        raise DeviceError("this device holds an energy model (per layer), not a polynomial of the workload's "
                          "totals; score it with tosim score / tosim.score")
    x = {"tos": tos, "flops": flops, "macs": macs}[device["feature"]]
    return calibrate.predict(device["coefficients"], float(x) if isinstance(x, int) else x)


def outside_fit(device, value):
    """Whether a device's polynomial applied at feature ``value`` is an extrapolation: ``True``
    when ``value`` lies more than :data:`FIT_MARGIN` times below or above the device's
    ``fitted_range`` (the feature values of the runs it was fitted on), ``False`` inside that
    margin, ``None`` when the device gives no range (or holds an energy model)."""
    span = device.get("fitted_range")
    if span is None or "energy_model" in device:
        return None
    low, high = span
    return bool(value < low / FIT_MARGIN or value > high * FIT_MARGIN)


def extrapolation_warning(device_name, device, results):
    """One line naming the results (with ``name`` and the device's feature as attributes) whose
    energy is an extrapolation of ``device``, or ``None`` when there is none."""
    feature = device.get("feature")
    far = [r for r in results if getattr(r, "energy_extrapolated", None)]
    if not far:
        return None
    low, high = device["fitted_range"]
    shown = ", ".join(f"{r.name} ({getattr(r, feature):.3g})" for r in far[:3])
    more = f" and {len(far) - 3} more" if len(far) > 3 else ""
    label = FEATURE_LABELS[feature]
    return (f"device {device_name!r} was fitted on runs of {low:.3g} to {high:.3g} {label}; the energy of "
            f"{shown}{more} {'lie' if len(far) > 1 else 'lies'} more than {FIT_MARGIN:g}x outside that range: "
            "an extrapolation, not a prediction")


def carbon_grams(energy_j, grid_g_per_kwh):
    """gCO2e of ``energy_j`` joules at a grid intensity in g/kWh (CodeCarbon's method)."""
    return energy_j / J_PER_KWH * grid_g_per_kwh


def apply_energy(rows, profile, device, grid=None):
    """Fill ``energy_j`` (the device's polynomial of the row's TOs, FLOPs or MACs, for the whole
    workload the row covers) and ``gco2e`` (at ``grid`` g/kWh, default the profile's) of every
    good row; ``None`` for both without a device."""
    grid = profile.grid_gco2_per_kwh if grid is None else grid
    for row in rows:
        row["energy_j"] = row["gco2e"] = row["energy_extrapolated"] = None
        if device is None or row["error"] is not None:
            continue
        if "energy_model" in device:
            _apply_model(row, device)
            if row["error"] is not None:
                continue
            energy = row["energy_j"]
            row["energy_j"] = None
        else:
            energy = float(energy_joules(device, row["tos"], row["flops"], row["macs"]))
        carbon = carbon_grams(energy, grid) if grid is not None else None
        if not math.isfinite(energy) or (carbon is not None and not math.isfinite(carbon)):
            # a result is a number or an error, never inf/nan presented as a score
            what = "energy" if not math.isfinite(energy) else "carbon"
            if "energy_model" in device:
                row["error"] = (f"{row['source'] or row['name']}: the {what} is not a finite number ({energy!r} J) "
                                "under the device's energy model")
                continue
            feature = device["feature"]
            row["error"] = (f"{row['source'] or row['name']}: the {what} is past float64's range: the device's "
                            f"coefficients {device['coefficients']} overflow at {feature} = {row[feature]:.4g}")
            continue
        row["energy_j"] = energy
        if "energy_model" not in device:
            row["energy_extrapolated"] = outside_fit(device, row[device["feature"]])
        if grid is not None:
            row["gco2e"] = carbon


def _apply_model(row, device):
    """A device energy model's joules of one row from its ``layer_table`` (the per-layer features
    the pipeline keeps for such devices): ``energy_j``, ``energy_terms``, ``time_s`` and the same
    per layer. An op the model does not price becomes the row's error."""
    from ._device_model import model_energy
    try:
        total, terms, time_s, per_layer = model_energy(device, row["layer_table"])
    except ValueError as exc:
        row["error"] = f"{row['source'] or row['name']}: {exc}"
        return
    row["energy_j"], row["energy_terms"], row["time_s"] = total, terms, time_s
    for layer in row.get("layers") or []:
        entry = per_layer.get(layer["name"], {"energy_j": 0.0, "terms": {t: 0.0 for t in terms}, "time_s": 0.0})
        layer["energy_j"], layer["energy_terms"], layer["time_s"] = entry["energy_j"], entry["terms"], entry["time_s"]
