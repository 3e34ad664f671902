//! A fixed-capacity vector on the stack, so decoding a call's arguments
//! neither allocates nor initialises unused slots.

use std::mem::MaybeUninit;

pub struct StackVec<T, const N: usize> {
    items: [MaybeUninit<T>; N],
    len: usize,
}

impl<T, const N: usize> StackVec<T, N> {
    pub fn new() -> Self {
        StackVec { items: [const { MaybeUninit::uninit() }; N], len: 0 }
    }

    /// Appends an item; callers bound their input counts by `N` beforehand.
    pub fn push(&mut self, item: T) {
        assert!(self.len < N, "StackVec capacity {N} exceeded");
        self.items[self.len].write(item);
        self.len += 1;
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` slots were written by `push`.
        unsafe { std::slice::from_raw_parts(self.items.as_ptr().cast::<T>(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the first `len` slots were written by `push`; the borrow is unique.
        unsafe { std::slice::from_raw_parts_mut(self.items.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T, const N: usize> Default for StackVec<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for StackVec<T, N> {
    fn drop(&mut self) {
        // SAFETY: the first `len` slots are initialised and dropped once.
        unsafe { std::ptr::drop_in_place(self.as_mut_slice()) }
    }
}
