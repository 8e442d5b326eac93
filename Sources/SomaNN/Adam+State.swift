extension Adam {
  /// Adam's running state, one tensor per parameter in `parameters` order: the first and second
  /// moment estimates and the number of steps taken. A training run saves it with its weights
  /// and restores it to resume exactly where it stopped.
  ///
  /// ```swift
  /// let saved = adam.state
  /// var resumed = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
  /// resumed.state = saved
  /// ```
  public var state: (stepCount: Int, first: [Tensor<Scalar>], second: [Tensor<Scalar>]) {
    get { (_stepCount, m.map { $0.copiedContiguous() }, v.map { $0.copiedContiguous() }) }
    set {
      precondition(
        newValue.first.count == parameters.count && newValue.second.count == parameters.count,
        "Adam.state: \(newValue.first.count) and \(newValue.second.count) moments for "
          + "\(parameters.count) parameters")
      precondition(newValue.stepCount >= 0, "Adam.state: step count \(newValue.stepCount)")
      for k in parameters.indices {
        let shape = parameters[k].value.shape
        precondition(
          newValue.first[k].shape == shape && newValue.second[k].shape == shape,
          "Adam.state: moments of shapes \(newValue.first[k].shape) and "
            + "\(newValue.second[k].shape) for a parameter of shape \(shape)")
      }
      _stepCount = newValue.stepCount
      m = newValue.first.map { $0.copiedContiguous() }
      v = newValue.second.map { $0.copiedContiguous() }
    }
  }
}
