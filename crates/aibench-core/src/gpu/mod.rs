//! GPU telemetry in dcgm-exporter's names and labels, so that dashboards and
//! alert rules written for dcgm-exporter work unchanged: samples read through
//! NVML (`nvml-wrapper` loads `libnvidia-ml.so.1` at run time: nothing is
//! needed to build, nothing breaks where it is missing), rendered as
//! Prometheus text; and the service's own process group (CPU and memory),
//! which works for services without a `/metrics` of their own.

pub mod exporter;
pub mod nvml;
pub mod procstat;

/// One GPU's reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSample {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub pci_bus_id: String,
    /// Percent of time a kernel ran (`DCGM_FI_DEV_GPU_UTIL`).
    pub gpu_util: Option<f64>,
    /// Percent of time memory was read or written (`DCGM_FI_DEV_MEM_COPY_UTIL`).
    pub mem_copy_util: Option<f64>,
    pub fb_used_mib: Option<f64>,
    pub fb_free_mib: Option<f64>,
    pub power_w: Option<f64>,
    /// Since the driver loaded, in millijoules (a counter).
    pub energy_mj: Option<f64>,
    pub sm_clock_mhz: Option<f64>,
    pub temp_c: Option<f64>,
}

/// (name, type, help) of each family, as dcgm-exporter's default counters
/// describe them, and the sample's value.
type Field = (&'static str, &'static str, &'static str, fn(&GpuSample) -> Option<f64>);

pub const FIELDS: [Field; 8] = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", |s| s.sm_clock_mhz),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", |s| s.temp_c),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", |s| s.power_w),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).", |s| {
        s.energy_mj
    }),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", |s| s.gpu_util),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", |s| s.mem_copy_util),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", |s| s.fb_free_mib),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", |s| s.fb_used_mib),
];

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// The samples as dcgm-exporter renders them: HELP and TYPE per family,
/// labels `gpu`, `UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`.
pub fn render(samples: &[GpuSample], hostname: &str) -> String {
    let mut out = String::new();
    for (name, kind, help, get) in FIELDS {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for s in samples {
            if let Some(v) = get(s) {
                out.push_str(&format!(
                    "{name}{{gpu=\"{}\",UUID=\"{}\",pci_bus_id=\"{}\",device=\"nvidia{}\",modelName=\"{}\",Hostname=\"{}\"}} {}\n",
                    s.index,
                    label(&s.uuid),
                    label(&s.pci_bus_id),
                    s.index,
                    label(&s.name),
                    label(hostname),
                    value(v)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dcgm_exporter_names_labels_and_units() {
        let s = GpuSample {
            index: 0,
            uuid: "GPU-8c16e996-bd76-aa91-17e7-b48bcd0208ba".into(),
            name: "NVIDIA H200".into(),
            pci_bus_id: "00000000:19:00.0".into(),
            gpu_util: Some(87.0),
            mem_copy_util: Some(41.0),
            fb_used_mib: Some(130_112.0),
            fb_free_mib: Some(12_480.0),
            power_w: Some(512.25),
            energy_mj: Some(31_035_686_671.0),
            sm_clock_mhz: Some(1980.0),
            temp_c: Some(54.0),
        };
        let text = render(&[s.clone(), GpuSample { index: 1, gpu_util: None, ..s }], "mel2041");
        assert!(text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n"));
        assert!(text.contains(
            "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-8c16e996-bd76-aa91-17e7-b48bcd0208ba\",pci_bus_id=\"00000000:19:00.0\",device=\"nvidia0\",modelName=\"NVIDIA H200\",Hostname=\"mel2041\"} 87\n"
        ));
        assert!(text.contains("DCGM_FI_DEV_POWER_USAGE{gpu=\"1\","));
        assert!(text.contains("} 512.25\n"));
        assert!(text.contains("} 31035686671\n"));
        // A reading NVML does not give is left out, not written as 0.
        assert_eq!(text.matches("DCGM_FI_DEV_GPU_UTIL{").count(), 1);
        // Prometheus' own parser reads it back.
        let fams = crate::prom::expfmt::parse(&text).unwrap();
        assert_eq!(crate::prom::expfmt::family(&fams, "DCGM_FI_DEV_FB_USED").unwrap().total(), 2.0 * 130_112.0);
    }
}
