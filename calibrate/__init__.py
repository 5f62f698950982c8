"""calibrate: fit per-device joule coefficients from measured energies, and measure them.

* Measurement files (:func:`read_measurements`, :func:`read_codecarbon`, :func:`read_any`): the
  measurement CSV (docs/calibration.md) and CodeCarbon's ``emissions.csv``; unusable rows are kept as
  ``(line, reason)`` problems, the rest returned as :class:`Measurement` rows whose workload
  (batch, samples, passes, epochs) is spelled out by :func:`workload_steps`.
* Fits (:func:`fit_polynomial`, :func:`fit_nonnegative`) of joules on TOs, FLOPs or MACs, with
  exact power-of-two feature scaling; :func:`split_indices` for the seeded 60/40 split and
  :func:`metrics` for the li2022 metrics (RMSE, R^2, Table III precision and errors in joules).
* Device energy models (:class:`EnergyModel`, :func:`fit_energy_model`): joules per basic op and
  format, per byte, per layer call and static power x roofline time, fitted non-negative with the
  profile's transistor prices as the prior, on per-layer features (:class:`LayerTable`).
* :func:`predict` turns a profile device's coefficients and a feature value into joules.
* Energy counters (:class:`RaplCounter`, :class:`NvmlCounter`, :func:`detect_counter`,
  :class:`EnergyMeter`, :func:`probe_counter`) and the PyTorch harness (:func:`measure_runs`;
  :func:`measure_forward` for inference passes timed to the counter's resolution).
* The layer benchmark (:func:`layer_suite`): seeded single-layer configurations across types.

calibrate imports no other tosim package; callers pass ModelIRs and zoo names in.
"""
from ._counters import (COUNTER_KINDS, MAX_PLAUSIBLE_W, CounterError, CounterProbe, CounterUnavailable, EnergyCounter,
                        EnergyMeter, NvmlCounter, RaplCounter, detect_counter, probe_counter, wrapped_delta)
from ._energy import (BYTE_ROLES, ENERGY_MODEL_VERSION, ENERGY_TERMS, FRESH_THRESHOLD_BYTES, LOSSES, EnergyModel,
                      LayerTable,
                      fit_energy_model, tos_only_scale)
from ._fit import (WEIGHTINGS, LinearFit, PolyFit, fit_nonnegative, fit_polynomial, metrics, power_of_two_scale,
                   predict, split_indices)
from ._harness import (TORCH_LAYERS, build_torch_module, iter_runs, measure_forward, measure_runs, require_torch,
                       time_forward)
from ._suite import MAX_ELEMENTS, MAX_MACS, SUITE_LAYER_TYPES, SuiteConfig, layer_suite
from ._measurements import (CODECARBON_KEYS, ENERGY_PARTS, PHASES, Measurement, MeasurementError,
                            MeasurementSet, energy_parts, read_any, read_codecarbon, read_measurements,
                            workload_steps)

__all__ = ["MeasurementError", "Measurement", "MeasurementSet", "read_measurements", "read_codecarbon",
           "read_any", "workload_steps", "energy_parts", "PHASES", "CODECARBON_KEYS", "ENERGY_PARTS",
           "WEIGHTINGS", "PolyFit", "LinearFit", "fit_polynomial", "fit_nonnegative", "predict",
           "power_of_two_scale", "split_indices", "metrics",
           "CounterUnavailable", "CounterError", "EnergyCounter", "RaplCounter", "NvmlCounter", "EnergyMeter",
           "detect_counter",
           "wrapped_delta", "COUNTER_KINDS", "MAX_PLAUSIBLE_W", "CounterProbe", "probe_counter",
           "build_torch_module", "measure_runs", "iter_runs", "measure_forward", "time_forward", "TORCH_LAYERS",
           "require_torch",
           "layer_suite", "SuiteConfig", "SUITE_LAYER_TYPES", "MAX_ELEMENTS", "MAX_MACS",
           "EnergyModel", "LayerTable", "fit_energy_model", "tos_only_scale", "ENERGY_TERMS", "BYTE_ROLES",
           "ENERGY_MODEL_VERSION", "LOSSES", "FRESH_THRESHOLD_BYTES"]
