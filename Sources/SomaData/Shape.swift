/// The number of elements of an array with `dimensions`, or nil when it cannot be addressed.
///
/// Nil when a dimension is negative or when the product of the nonzero dimensions overflows
/// `Int`: such a shape is nonsense even when another dimension is 0 (the array is then empty,
/// but its strides still overflow), so every reader rejects it before anything else.
func checkedElementCount(_ dimensions: [Int], elementSize: Int = 1) -> Int? {
  var product = elementSize
  var empty = false
  for d in dimensions {
    guard d >= 0 else { return nil }
    if d == 0 {
      empty = true
      continue
    }
    let (p, overflow) = product.multipliedReportingOverflow(by: d)
    guard !overflow else { return nil }
    product = p
  }
  return empty ? 0 : product
}
