// swift-tools-version: 6.1
import PackageDescription

// A package of its own that depends on aepsl as any other package would (here by path; from
// elsewhere `.package(url: "https://.../aepsl.git", from: "...")`), and labels an image with
// a segmenter that `aepsl run` or `aepsl train-seg` trained.
let package = Package(
  name: "LabelImage",
  dependencies: [
    // `name:` lets the products below say `package: "aepsl"` whatever the checkout's folder is called.
    .package(name: "aepsl", path: "../.."),
  ],
  targets: [
    .executableTarget(
      name: "label-image",
      dependencies: [
        .product(name: "AEPSLData", package: "aepsl"),
        .product(name: "AEPSLImaging", package: "aepsl"),
        .product(name: "AEPSLMethod", package: "aepsl"),
        .product(name: "AEPSLPipeline", package: "aepsl"),
      ],
      path: "Sources/LabelImage"
    ),
  ]
)
