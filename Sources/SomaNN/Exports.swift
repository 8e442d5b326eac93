@_exported import SomaSurrogate
@_exported import SomaTensor
