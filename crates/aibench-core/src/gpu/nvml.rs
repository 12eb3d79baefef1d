//! Reading the GPUs through NVML. `Nvml::init` loads `libnvidia-ml.so.1` at
//! run time; where it is missing (no GPU, no driver) the error says so and
//! the caller carries on without GPU metrics.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};

use super::GpuSample;

/// An open NVML session.
pub struct Gpus {
    nvml: Nvml,
}

impl Gpus {
    /// NVML, or why it cannot be used here.
    pub fn open() -> Result<Gpus, String> {
        Nvml::init().map(|nvml| Gpus { nvml }).map_err(|e| {
            format!("NVML is not available on this node ({e}): no GPU metrics (a GPU node needs the NVIDIA driver's libnvidia-ml.so.1)")
        })
    }

    /// Every GPU's reading now; a reading a GPU does not support is left out.
    pub fn sample(&self) -> Result<Vec<GpuSample>, String> {
        let n = self.nvml.device_count().map_err(|e| format!("NVML: cannot count GPUs: {e}"))?;
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let d = self.nvml.device_by_index(i).map_err(|e| format!("NVML: GPU {i}: {e}"))?;
            let util = d.utilization_rates().ok();
            let mem = d.memory_info().ok();
            const MIB: f64 = 1024.0 * 1024.0;
            out.push(GpuSample {
                index: i,
                uuid: d.uuid().unwrap_or_default(),
                name: d.name().unwrap_or_default(),
                pci_bus_id: d.pci_info().map(|p| p.bus_id).unwrap_or_default(),
                gpu_util: util.as_ref().map(|u| u.gpu as f64),
                mem_copy_util: util.as_ref().map(|u| u.memory as f64),
                fb_used_mib: mem.as_ref().map(|m| m.used as f64 / MIB),
                fb_free_mib: mem.as_ref().map(|m| m.free as f64 / MIB),
                power_w: d.power_usage().ok().map(|mw| mw as f64 / 1000.0),
                energy_mj: d.total_energy_consumption().ok().map(|mj| mj as f64),
                sm_clock_mhz: d.clock_info(Clock::SM).ok().map(|c| c as f64),
                temp_c: d.temperature(TemperatureSensor::Gpu).ok().map(|t| t as f64),
            });
        }
        Ok(out)
    }
}
