extension CompiledNetwork {
  /// For each of `optimizer`'s parameters, true when `trainStep(…, optimizer:)` keeps its Adam
  /// moments in the kernels' layout, [in, out] for a Linear weight of shape [out, in]: the
  /// fused update runs on the kernels' copy of the weights. On event input SpyTorch's block plan
  /// updates the weights in their own layout, and an update outside the kernels
  /// (`lossAndGradients` then `step()`) always does. A run that saves Adam's moments, or moves
  /// between the fused update and `step()`, transposes these.
  package func adamMomentsInKernelLayout(eventInput: Bool, optimizer: Adam<Scalar>) -> [Bool] {
    let fusedUpdate =
      isFused && (optimizer.weightDecay == 0 || optimizer.decoupled)
      && !(eventInput && cubaBlock != nil)
    let kernelLayout = Set(linears.map { ObjectIdentifier($0.weight) })
    return optimizer.parameters.map { fusedUpdate && kernelLayout.contains(ObjectIdentifier($0)) }
  }
}
