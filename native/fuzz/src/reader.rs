//! A cursor over fuzz bytes: every read succeeds (zeros once the input is
//! exhausted), so a harness turns any input into one well-defined call.

pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.iter_mut().for_each(|b| *b = self.u8());
        u64::from_le_bytes(bytes)
    }

    pub fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    /// Up to `len` bytes (fewer when the input runs out).
    pub fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        head
    }
}
