//! Kernel descriptors: the protobuf types generated from
//! `proto/tandem/v1/descriptor.proto`, a builder that reads like the
//! contract it writes, and the stable descriptor hash.
//!
//! ```
//! use tandem_sdk::descriptor::{Flags, KernelDescriptor, ParamSpec, TensorSpec, D};
//! use tandem_sdk::DType;
//!
//! let descriptor = KernelDescriptor::builder("stats.moments", 1)
//!     .summary("Mean and variance of each row.")
//!     .input(TensorSpec::new("values", DType::F64, [D::sym("batch"), D::sym("len")]).finite_only())
//!     .output(TensorSpec::new("mean", DType::F64, [D::sym("batch")]))
//!     .param(ParamSpec::int("ddof", 0, 1, 0))
//!     .flags(Flags { idempotent: true, batchable: true, deterministic: true, ..Flags::default() })
//!     .build();
//! assert_eq!(descriptor.inputs[0].name, "values");
//! ```

#[allow(clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tandem.v1.rs"));
}

pub use pb::{
    KernelDescriptor, KernelFlags, KernelSet, Limit, OutputSymbol, ParamSpec, StateKindDescriptor, TensorSpec,
    WorkBound, WorkFactor,
};

/// Named kernel flags (`Flags { idempotent: true, ..Flags::default() }`).
pub type Flags = KernelFlags;

use crate::tensor::DType;
use pb::{dim, Dim, ParamType};
use prost::Message;

/// A dimension of a tensor spec: a fixed size or a symbol shared across the
/// specs of one kernel (`batch`, `dim`, `k`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum D {
    Fixed(i64),
    Sym(&'static str),
}

impl D {
    pub const fn sym(name: &'static str) -> D {
        D::Sym(name)
    }

    pub const fn fixed(size: i64) -> D {
        D::Fixed(size)
    }
}

/// A factor of a call's work (see [`DescriptorBuilder::work`]): the size a
/// call binds to a symbol, or the value of an integer parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum W {
    Sym(&'static str),
    Param(&'static str),
}

impl W {
    pub const fn sym(name: &'static str) -> W {
        W::Sym(name)
    }

    pub const fn param(name: &'static str) -> W {
        W::Param(name)
    }
}

impl TensorSpec {
    /// A tensor of `dtype` with `shape`; NaN and infinity allowed unless
    /// [`TensorSpec::finite_only`] is set.
    pub fn new<const N: usize>(name: &str, dtype: DType, shape: [D; N]) -> TensorSpec {
        tensor(name, dtype, &shape, false)
    }

    /// Rejects NaN and infinity in this tensor with INVALID_ARGUMENT.
    pub fn finite_only(mut self) -> TensorSpec {
        self.finite_only = true;
        self
    }
}

impl ParamSpec {
    /// An integer in `[min, max]`.
    pub fn int(name: &str, min: i64, max: i64, default_value: i64) -> ParamSpec {
        param(name, ParamType::Int, min as f64, max as f64, default_value as f64)
    }

    /// A finite float in `[min, max]`.
    pub fn float(name: &str, min: f64, max: f64, default_value: f64) -> ParamSpec {
        param(name, ParamType::Float, min, max, default_value)
    }

    /// A boolean, passed as the integer 0 or 1.
    pub fn boolean(name: &str, default_value: bool) -> ParamSpec {
        param(name, ParamType::Bool, 0.0, 1.0, f64::from(u8::from(default_value)))
    }

    /// An integer selecting one of `choices` by index.
    pub fn choice(name: &str, choices: &[&str], default_index: i64) -> ParamSpec {
        let mut spec = param(name, ParamType::Enum, 0.0, choices.len().saturating_sub(1) as f64, default_index as f64);
        spec.choices = choices.iter().map(|c| (*c).to_owned()).collect();
        spec
    }
}

fn param(name: &str, kind: ParamType, min: f64, max: f64, default_value: f64) -> ParamSpec {
    ParamSpec { name: name.to_owned(), r#type: kind as i32, min, max, default_value, choices: Vec::new() }
}

pub fn tensor(name: &str, dtype: DType, shape: &[D], finite_only: bool) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        dtype: dtype as i32,
        shape: shape
            .iter()
            .map(|d| Dim {
                kind: Some(match d {
                    D::Fixed(n) => dim::Kind::Fixed(*n),
                    D::Sym(s) => dim::Kind::Symbol((*s).to_owned()),
                }),
            })
            .collect(),
        finite_only,
    }
}

impl KernelDescriptor {
    /// Starts a descriptor; the SDK checks it when the library is built.
    pub fn builder(name: &str, version: u32) -> DescriptorBuilder {
        DescriptorBuilder {
            descriptor: KernelDescriptor {
                name: name.to_owned(),
                version,
                flags: Some(Flags::default()),
                ..KernelDescriptor::default()
            },
        }
    }

    /// The value of the limit `name`, if the descriptor declares it.
    pub fn limit(&self, name: &str) -> Option<i64> {
        self.limits.iter().find(|l| l.name == name).map(|l| l.value)
    }

    /// The descriptor's flags (all false when unset).
    pub fn flags(&self) -> Flags {
        self.flags.clone().unwrap_or_default()
    }
}

/// Builds a [`KernelDescriptor`] in declaration order.
#[must_use]
pub struct DescriptorBuilder {
    descriptor: KernelDescriptor,
}

impl DescriptorBuilder {
    pub fn summary(mut self, text: &str) -> Self {
        self.descriptor.summary = text.to_owned();
        self
    }

    pub fn input(mut self, spec: TensorSpec) -> Self {
        self.descriptor.inputs.push(spec);
        self
    }

    pub fn output(mut self, spec: TensorSpec) -> Self {
        self.descriptor.outputs.push(spec);
        self
    }

    /// Parameters are positional: the i-th `param` is parameter i of a call.
    pub fn param(mut self, spec: ParamSpec) -> Self {
        self.descriptor.params.push(spec);
        self
    }

    /// The kind of state the kernel reads (a [`crate::StateKind`]'s name).
    pub fn state_kind(mut self, kind: &str) -> Self {
        self.descriptor.state_kind = kind.to_owned();
        self
    }

    pub fn flags(mut self, flags: Flags) -> Self {
        self.descriptor.flags = Some(flags);
        self
    }

    /// A limit callers need (published with the descriptor and in the
    /// generated C# facade).
    pub fn limit(mut self, name: &str, value: i64, description: &str) -> Self {
        self.descriptor.limits.push(Limit { name: name.to_owned(), value, description: description.to_owned() });
        self
    }

    /// Declares a symbol that only outputs use, sized by the caller (up to
    /// `max`, 0 for no bound of its own).
    pub fn output_symbol(mut self, name: &str, max: i64, description: &str) -> Self {
        self.descriptor.output_symbols.push(OutputSymbol {
            name: name.to_owned(),
            max,
            description: description.to_owned(),
        });
        self
    }

    /// Declares how one call's work grows, as the product of `factors`, and
    /// the most of it one call may ask for: validation refuses a larger call
    /// with RESOURCE_EXHAUSTED naming the factors and the limit
    /// `max_work_per_call`, on every backend, and dynamic batching splits
    /// batches at it. `.work(&[W::sym("batch"), W::param("paths")], 10_000_000_000)`
    /// bounds rows × paths.
    pub fn work(mut self, factors: &[W], max_per_call: i64) -> Self {
        let factors = factors
            .iter()
            .map(|f| WorkFactor {
                kind: Some(match f {
                    W::Sym(s) => pb::work_factor::Kind::Symbol((*s).to_owned()),
                    W::Param(p) => pb::work_factor::Kind::Param((*p).to_owned()),
                }),
            })
            .collect();
        self.descriptor.work = Some(WorkBound { factors, max_per_call });
        self
    }

    pub fn build(self) -> KernelDescriptor {
        self.descriptor
    }
}

impl StateKindDescriptor {
    /// A state kind built from `tensors` (in order); `optional` names the
    /// ones a caller may omit.
    pub fn new(name: &str, tensors: Vec<TensorSpec>, optional: &[&str]) -> StateKindDescriptor {
        StateKindDescriptor {
            name: name.to_owned(),
            tensors,
            optional_tensors: optional.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Domain separation for [`hash`]: bump only with a new hash scheme.
const HASH_DOMAIN: &[u8] = b"tandem.descriptor.v1";

/// The stable hash of a kernel's contract: lowercase hex of the first 16
/// bytes of BLAKE3 over the domain, the descriptor's canonical protobuf
/// encoding with `hash` and `library` cleared, and its state kind's
/// descriptor. Protobuf's encoding of these messages is canonical (fields
/// in number order, defaults omitted, no maps), so every language computes
/// the same bytes.
pub fn hash(descriptor: &KernelDescriptor, state_kind: Option<&StateKindDescriptor>) -> String {
    let mut contract = descriptor.clone();
    contract.hash.clear();
    contract.library.clear();
    let mut hasher = blake3::Hasher::new();
    hasher.update(HASH_DOMAIN);
    let body = contract.encode_to_vec();
    hasher.update(&(body.len() as u64).to_le_bytes());
    hasher.update(&body);
    if let Some(kind) = state_kind {
        let kind = kind.encode_to_vec();
        hasher.update(&(kind.len() as u64).to_le_bytes());
        hasher.update(&kind);
    }
    hasher.finalize().as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The symbol name of a dimension, if it is symbolic.
pub fn symbol(d: &Dim) -> Option<&str> {
    match &d.kind {
        Some(dim::Kind::Symbol(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KernelDescriptor {
        KernelDescriptor::builder("t.k", 1)
            .input(TensorSpec::new("x", DType::F32, [D::sym("n")]))
            .output(TensorSpec::new("y", DType::F32, [D::sym("n")]))
            .build()
    }

    #[test]
    fn hash_ignores_hash_and_library_fields() {
        let mut d = sample();
        let h = hash(&d, None);
        d.hash = h.clone();
        d.library = "somewhere".into();
        assert_eq!(hash(&d, None), h);
        assert_eq!(h.len(), 32);
    }

    #[test]
    fn hash_changes_with_the_contract_and_the_state_kind() {
        let d = sample();
        let mut other = sample();
        other.inputs[0].finite_only = true;
        assert_ne!(hash(&d, None), hash(&other, None));
        let kind = StateKindDescriptor::new("s", vec![TensorSpec::new("v", DType::F32, [D::sym("n")])], &[]);
        assert_ne!(hash(&d, None), hash(&d, Some(&kind)));
    }

    #[test]
    fn hash_changes_with_a_work_bound_only_when_one_is_declared() {
        let plain = sample();
        let mut unset = sample();
        unset.work = None;
        assert_eq!(hash(&plain, None), hash(&unset, None));
        let bounded = KernelDescriptor::builder("t.k", 1)
            .input(TensorSpec::new("x", DType::F32, [D::sym("n")]))
            .output(TensorSpec::new("y", DType::F32, [D::sym("n")]))
            .work(&[W::sym("n")], 100)
            .build();
        assert_ne!(hash(&plain, None), hash(&bounded, None));
        let mut other = bounded.clone();
        other.work.as_mut().unwrap().max_per_call = 101;
        assert_ne!(hash(&bounded, None), hash(&other, None));
    }
}
