// Embedded Lua and recipes are read by include_dir; rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../lua");
    println!("cargo:rerun-if-changed=../../recipes");
    println!("cargo:rerun-if-changed=build.rs");
}
