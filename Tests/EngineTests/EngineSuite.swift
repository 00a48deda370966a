import Testing

/// Every engine suite nests here and runs one test at a time: oneDNN and OpenBLAS already
/// spread each call over all cores, and the shared oneDNN stream is not meant for
/// concurrent use.
@Suite(.serialized) enum EngineSuite {}
