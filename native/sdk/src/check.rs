//! The checks a descriptor passes before a library is built: what the SDK
//! refuses so that no host or worker ever serves a contract that callers
//! could not satisfy or that validation could not enforce.

use crate::descriptor::pb::{dim, work_factor, ParamType};
use crate::descriptor::{symbol, KernelDescriptor, StateKindDescriptor, TensorSpec, WorkBound};
use crate::tensor::{DType, MAX_RANK};
use crate::validate::{MAX_SYMBOLS, WORK_LIMIT};
use std::collections::HashSet;

/// Most tensors a kernel declares (inputs or outputs): what one C ABI call carries.
const MAX_TENSORS: usize = crate::abi::TANDEM_MAX_TENSORS;
/// Most parameters a kernel declares: what one C ABI call carries.
const MAX_PARAMS: usize = crate::abi::TANDEM_MAX_PARAMS;

/// Whether `name` is a valid kernel or state kind name: lowercase ASCII
/// letters, digits, `.`, `_` and `-`, 1 to 128 bytes, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

fn tensors(owner: &str, what: &str, specs: &[TensorSpec], names: &mut HashSet<String>) -> Result<(), String> {
    if specs.len() > MAX_TENSORS {
        return Err(format!("{owner} declares {} {what}s; at most {MAX_TENSORS} are supported", specs.len()));
    }
    for spec in specs {
        if spec.name.is_empty() {
            return Err(format!("{owner} has an {what} without a name"));
        }
        if !names.insert(spec.name.clone()) {
            return Err(format!("{owner} declares tensor '{}' twice", spec.name));
        }
        if DType::from_raw(spec.dtype as u32).is_none() {
            return Err(format!("{owner}: tensor '{}' has no valid dtype", spec.name));
        }
        if spec.shape.len() > MAX_RANK {
            return Err(format!("{owner}: tensor '{}' has rank {}; at most {MAX_RANK}", spec.name, spec.shape.len()));
        }
        for d in &spec.shape {
            match &d.kind {
                Some(dim::Kind::Fixed(n)) if *n < 0 => {
                    return Err(format!("{owner}: tensor '{}' has negative fixed size {n}", spec.name));
                }
                Some(dim::Kind::Symbol(s)) if s.is_empty() => {
                    return Err(format!("{owner}: tensor '{}' has an empty symbol", spec.name));
                }
                None => return Err(format!("{owner}: tensor '{}' has a dimension with no size or symbol", spec.name)),
                _ => {}
            }
        }
    }
    Ok(())
}

fn symbols_of(specs: &[TensorSpec]) -> impl Iterator<Item = &str> {
    specs.iter().flat_map(|s| s.shape.iter().filter_map(symbol))
}

pub(crate) fn state_kinds(kinds: &[&StateKindDescriptor]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for kind in kinds {
        if !valid_name(&kind.name) {
            return Err(format!(
                "state kind name '{}' is not a lowercase name of letters, digits, '.', '_', '-'",
                kind.name
            ));
        }
        if !seen.insert(kind.name.as_str()) {
            return Err(format!("state kind '{}' is registered twice", kind.name));
        }
        let owner = format!("state kind '{}'", kind.name);
        tensors(&owner, "tensor", &kind.tensors, &mut HashSet::new())?;
        for optional in &kind.optional_tensors {
            if !kind.tensors.iter().any(|t| &t.name == optional) {
                return Err(format!("{owner} marks unknown tensor '{optional}' optional"));
            }
        }
    }
    Ok(())
}

/// Checks one kernel descriptor, with its state kind and whether the kernel
/// has a stream implementation; the error names the kernel and the problem.
pub fn kernel(d: &KernelDescriptor, state_kind: Option<&StateKindDescriptor>, has_stream: bool) -> Result<(), String> {
    if !valid_name(&d.name) {
        return Err(format!("kernel name '{}' is not a lowercase name of letters, digits, '.', '_', '-'", d.name));
    }
    let owner = format!("kernel '{}'", d.name);
    if d.version == 0 {
        return Err(format!("{owner} has version 0; versions start at 1"));
    }
    if !d.hash.is_empty() || !d.library.is_empty() {
        return Err(format!("{owner} sets 'hash' or 'library'; the SDK fills those in"));
    }
    let mut names = HashSet::new();
    tensors(&owner, "input", &d.inputs, &mut names)?;
    tensors(&owner, "output", &d.outputs, &mut names)?;

    let flags = d.flags();
    if flags.streaming != has_stream {
        return Err(if flags.streaming {
            format!("{owner} is marked streaming but has no stream implementation (Kernel::stream)")
        } else {
            format!("{owner} has a stream implementation but its descriptor is not marked streaming")
        });
    }
    if flags.batchable {
        for spec in d.inputs.iter().chain(&d.outputs) {
            if spec.shape.first().and_then(symbol) != Some(first_batch_symbol(d).unwrap_or_default()) {
                return Err(format!(
                    "{owner} is batchable, so every tensor's axis 0 must be the same symbol; '{}' is not",
                    spec.name
                ));
            }
        }
    }

    match (d.state_kind.as_str(), state_kind) {
        ("", _) => {}
        (kind, None) => return Err(format!("{owner} reads state kind '{kind}', which this library does not register")),
        _ => {}
    }

    let mut bound: HashSet<&str> = symbols_of(&d.inputs).collect();
    if let Some(kind) = state_kind {
        bound.extend(symbols_of(&kind.tensors));
    }
    if bound.len() > MAX_SYMBOLS {
        return Err(format!("{owner} uses {} symbols; at most {MAX_SYMBOLS}", bound.len()));
    }
    let mut declared = HashSet::new();
    for s in &d.output_symbols {
        if s.name.is_empty() || !declared.insert(s.name.as_str()) {
            return Err(format!("{owner} declares output symbol '{}' twice or without a name", s.name));
        }
        if s.max < 0 {
            return Err(format!("{owner}: output symbol '{}' has a negative max {}", s.name, s.max));
        }
    }
    for s in symbols_of(&d.outputs) {
        if !bound.contains(s) && !declared.contains(s) {
            return Err(format!(
                "{owner}: output symbol '{s}' is bound by no input or state tensor; declare it with output_symbol"
            ));
        }
    }

    if d.params.len() > MAX_PARAMS {
        return Err(format!("{owner} declares {} parameters; at most {MAX_PARAMS}", d.params.len()));
    }
    let mut params = HashSet::new();
    for p in &d.params {
        let name = &p.name;
        if name.is_empty() || !params.insert(name.as_str()) {
            return Err(format!("{owner} declares parameter '{name}' twice or without a name"));
        }
        let kind = ParamType::from_i32(p.r#type).unwrap_or(ParamType::Unspecified);
        if kind == ParamType::Unspecified {
            return Err(format!("{owner}: parameter '{name}' has no type"));
        }
        if !(p.min.is_finite() && p.max.is_finite() && p.default_value.is_finite()) {
            return Err(format!("{owner}: parameter '{name}' has a non-finite bound or default"));
        }
        if p.min > p.max {
            return Err(format!("{owner}: parameter '{name}' has min {} > max {}", p.min, p.max));
        }
        if p.default_value < p.min || p.default_value > p.max {
            return Err(format!(
                "{owner}: parameter '{name}' default {} is outside [{}, {}]",
                p.default_value, p.min, p.max
            ));
        }
        if kind == ParamType::Enum && p.choices.is_empty() {
            return Err(format!("{owner}: choice parameter '{name}' has no choices"));
        }
        if kind != ParamType::Float && (p.min.fract() != 0.0 || p.max.fract() != 0.0 || p.default_value.fract() != 0.0)
        {
            return Err(format!("{owner}: integer parameter '{name}' has a fractional bound or default"));
        }
    }
    let mut limits = HashSet::new();
    for l in &d.limits {
        if l.name.is_empty() || !limits.insert(l.name.as_str()) {
            return Err(format!("{owner} declares limit '{}' twice or without a name", l.name));
        }
    }
    if let Some(work) = &d.work {
        work_bound(&owner, d, work)?;
    }
    Ok(())
}

/// A work bound's factors must be sizes a call binds (a symbol of an input
/// or output) or non-negative integer parameters, and its maximum positive.
fn work_bound(owner: &str, d: &KernelDescriptor, work: &WorkBound) -> Result<(), String> {
    if work.factors.is_empty() {
        return Err(format!("{owner} declares a work bound without factors"));
    }
    if work.max_per_call <= 0 {
        return Err(format!("{owner} declares max_work_per_call {}; it must be positive", work.max_per_call));
    }
    if d.limits.iter().any(|l| l.name == WORK_LIMIT) {
        return Err(format!("{owner} declares a limit named '{WORK_LIMIT}'; declare it with `work` instead"));
    }
    let bound: HashSet<&str> = symbols_of(&d.inputs).chain(symbols_of(&d.outputs)).collect();
    for factor in &work.factors {
        match &factor.kind {
            Some(work_factor::Kind::Symbol(s)) if !bound.contains(s.as_str()) => {
                return Err(format!(
                    "{owner}: work factor '{s}' is no symbol of an input or output (state symbols are not bound by a call)"
                ));
            }
            Some(work_factor::Kind::Param(p)) => {
                let spec = d.params.iter().find(|spec| &spec.name == p);
                let integer = spec.map(|s| ParamType::from_i32(s.r#type) == Some(ParamType::Int));
                match (spec, integer) {
                    (None, _) => return Err(format!("{owner}: work factor '{p}' is no parameter of the kernel")),
                    (Some(_), Some(false)) => {
                        return Err(format!("{owner}: work factor '{p}' is not an integer parameter"));
                    }
                    (Some(spec), _) if spec.min < 0.0 => {
                        return Err(format!("{owner}: work factor '{p}' may be negative (min {})", spec.min));
                    }
                    _ => {}
                }
            }
            None => return Err(format!("{owner} has a work factor with no symbol or parameter")),
            _ => {}
        }
    }
    Ok(())
}

fn first_batch_symbol(d: &KernelDescriptor) -> Option<&str> {
    d.inputs.first().and_then(|t| t.shape.first()).and_then(symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{Flags, ParamSpec, TensorSpec, D, W};

    fn base() -> crate::descriptor::DescriptorBuilder {
        KernelDescriptor::builder("t.k", 1)
            .input(TensorSpec::new("x", DType::F32, [D::sym("batch"), D::sym("dim")]))
            .output(TensorSpec::new("y", DType::F32, [D::sym("batch")]))
    }

    fn refused(d: KernelDescriptor) -> String {
        kernel(&d, None, false).expect_err("the descriptor should be refused")
    }

    #[test]
    fn kernel_accepts_a_well_formed_descriptor() {
        assert_eq!(kernel(&base().build(), None, false), Ok(()));
    }

    #[test]
    fn kernel_refuses_duplicate_tensor_names() {
        let d = base().output(TensorSpec::new("x", DType::F32, [D::sym("batch")])).build();
        assert!(refused(d).contains("declares tensor 'x' twice"));
    }

    #[test]
    fn kernel_refuses_an_unknown_output_symbol() {
        let d = base().output(TensorSpec::new("z", DType::F32, [D::sym("batch"), D::sym("k")])).build();
        assert!(refused(d).contains("output symbol 'k' is bound by no input"));
        let declared = base()
            .output(TensorSpec::new("z", DType::F32, [D::sym("batch"), D::sym("k")]))
            .output_symbol("k", 16, "chosen by the caller")
            .build();
        assert_eq!(kernel(&declared, None, false), Ok(()));
    }

    #[test]
    fn kernel_refuses_min_above_max() {
        let d = base().param(ParamSpec::int("n", 5, 1, 3)).build();
        assert!(refused(d).contains("min 5 > max 1"));
    }

    #[test]
    fn kernel_refuses_a_default_out_of_range() {
        let d = base().param(ParamSpec::int("n", 1, 5, 9)).build();
        assert!(refused(d).contains("default 9 is outside"));
    }

    #[test]
    fn kernel_refuses_streaming_without_a_stream() {
        let d = base().flags(Flags { streaming: true, ..Flags::default() }).build();
        assert!(refused(d).contains("no stream implementation"));
        let d = base().build();
        assert!(kernel(&d, None, true).unwrap_err().contains("not marked streaming"));
    }

    #[test]
    fn kernel_refuses_an_unregistered_state_kind() {
        let d = base().state_kind("nowhere").build();
        assert!(refused(d).contains("state kind 'nowhere'"));
    }

    #[test]
    fn kernel_refuses_a_batchable_kernel_without_a_shared_axis_0() {
        let d = KernelDescriptor::builder("t.k", 1)
            .input(TensorSpec::new("x", DType::F32, [D::sym("batch")]))
            .output(TensorSpec::new("y", DType::F32, [D::fixed(1)]))
            .flags(Flags { batchable: true, ..Flags::default() })
            .build();
        assert!(refused(d).contains("axis 0 must be the same symbol"));
    }

    #[test]
    fn kernel_refuses_bad_names_and_versions() {
        assert!(refused(KernelDescriptor::builder("Bad Name", 1).build()).contains("not a lowercase name"));
        assert!(refused(KernelDescriptor::builder("ok", 0).build()).contains("version 0"));
    }

    #[test]
    fn state_kinds_refuse_unknown_optional_tensors_and_duplicates() {
        let kind = StateKindDescriptor::new("s", vec![TensorSpec::new("v", DType::F32, [D::sym("n")])], &["w"]);
        assert!(state_kinds(&[&kind]).unwrap_err().contains("unknown tensor 'w' optional"));
        let ok = StateKindDescriptor::new("s", vec![], &[]);
        assert!(state_kinds(&[&ok, &ok]).unwrap_err().contains("registered twice"));
    }

    #[test]
    fn kernel_accepts_a_work_bound_over_symbols_and_integer_parameters() {
        let d =
            base().param(ParamSpec::int("paths", 1, 1000, 10)).work(&[W::sym("batch"), W::param("paths")], 64).build();
        assert_eq!(kernel(&d, None, false), Ok(()));
    }

    #[test]
    fn kernel_refuses_work_bounds_it_could_not_enforce() {
        let cases = [
            (base().work(&[], 10).build(), "work bound without factors"),
            (base().work(&[W::sym("batch")], 0).build(), "max_work_per_call 0; it must be positive"),
            (base().work(&[W::sym("rows")], 10).build(), "work factor 'rows' is no symbol of an input or output"),
            (base().work(&[W::param("paths")], 10).build(), "work factor 'paths' is no parameter"),
            (
                base().param(ParamSpec::float("scale", 0.0, 1.0, 0.5)).work(&[W::param("scale")], 10).build(),
                "'scale' is not an integer parameter",
            ),
            (
                base().param(ParamSpec::int("seed", -5, 5, 0)).work(&[W::param("seed")], 10).build(),
                "'seed' may be negative (min -5)",
            ),
            (
                base().limit("max_work_per_call", 5, "").work(&[W::sym("batch")], 10).build(),
                "declares a limit named 'max_work_per_call'",
            ),
        ];
        for (d, text) in cases {
            let error = refused(d);
            assert!(error.contains(text), "{text}: {error}");
        }
    }
}
