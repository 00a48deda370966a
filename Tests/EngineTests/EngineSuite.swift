import AEPSLEngine
import AEPSLTestSupport
import Testing

/// Every engine suite nests here and runs one test at a time: oneDNN and OpenBLAS already
/// spread each call over all cores, and the shared oneDNN stream is not meant for
/// concurrent use.
@Suite(.serialized) enum EngineSuite {}

/// The layouts a 4-D input with `channels` can come in: `inputLayouts` (NCHW, nChw8c), and
/// nChw16c (the AVX-512 activation layout) when the channels are a multiple of 16.
func engineLayouts(channels: Int) -> [TensorLayout] {
  inputLayouts(channels: channels) + (channels % 16 == 0 ? [.nChw16c] : [])
}
