import SomaTensor
public enum TestSupport {}
