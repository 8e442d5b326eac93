@_exported import SomaTensor
