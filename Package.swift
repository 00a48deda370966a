// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "aepsl",
  products: [
    // MARK: - Public API
    .library(name: "AEPSLEngine", targets: ["AEPSLEngine"]),
    .library(name: "AEPSLImaging", targets: ["AEPSLImaging"]),
    .library(name: "AEPSLData", targets: ["AEPSLData"]),
    .library(name: "AEPSLMethod", targets: ["AEPSLMethod"]),
    .library(name: "AEPSLCRF", targets: ["AEPSLCRF"]),
    .library(name: "AEPSLReport", targets: ["AEPSLReport"]),
    .library(name: "AEPSLPipeline", targets: ["AEPSLPipeline"]),
    .library(name: "AEPSLExport", targets: ["AEPSLExport"]),
    .executable(name: "aepsl", targets: ["aepsl"]),
  ],
  // `--traits MPI` builds data-parallel training and sharded stages over Open MPI
  // (libopenmpi-dev; README: On a cluster). Without it nothing links MPI and every command
  // runs as one process, as before.
  traits: [
    .trait(name: "MPI", description: "Data-parallel training and sharded stages over Open MPI (needs libopenmpi-dev)."),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // MARK: - Public API
    // Writing artefacts atomically (temporary file, fsync, rename) and the one error type
    // (file, problem, fix): shared by every target that reads or writes files.
    .target(name: "AEPSLFiles"),
    // Tensors, layers with explicit forward/backward, losses, SGD, networks, checkpoints.
    .target(
      name: "AEPSLEngine",
      dependencies: ["AEPSLFiles", "CDNNL", "COpenBLAS"]
    ),
    // Ranks and collectives: a single-process communicator always, Open MPI's with the MPI
    // trait; sync batch norm, the gradient allreduce, shards of per-image stages.
    .target(
      name: "AEPSLDistributed",
      dependencies: ["AEPSLEngine", "AEPSLFiles", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]
    ),
    // Images: JPEG/PNG codecs, resizing, colour maps, overlays.
    .target(
      name: "AEPSLImaging",
      dependencies: ["AEPSLFiles", "CImageCodecs"]
    ),
    // Datasets: the VOC layout, augmentation, the background batch loader, the synthetic set.
    .target(
      name: "AEPSLData",
      dependencies: ["AEPSLEngine", "AEPSLFiles", "AEPSLImaging"]
    ),
    // The method: CAMs, adversarial erasing, pseudo masks, saliency, evaluation.
    .target(
      name: "AEPSLMethod",
      dependencies: ["AEPSLData", "AEPSLDistributed", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging"]
    ),
    // The fully connected CRF: mean field on permutohedral lattices in Swift (Foundation,
    // Dispatch), with AEPSLFiles for its errors and CCRFKernels for its hot loops on AVX2.
    .target(
      name: "AEPSLCRF",
      dependencies: ["AEPSLFiles", "CCRFKernels"]
    ),
    // The run report: one self-contained HTML page (inline SVG plots, images as files beside it).
    .target(
      name: "AEPSLReport",
      dependencies: ["AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod"]
    ),
    // `aepsl run`: every stage in order, resumable, configured by one JSON file.
    .target(
      name: "AEPSLPipeline",
      dependencies: ["AEPSLCRF", "AEPSLData", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod", "AEPSLReport"]
    ),
    // A trained network for other runtimes: ONNX (protobuf written by hand, opset 17) and a
    // PyTorch state dict in safetensors, both from one inference description (BN folded).
    .target(
      name: "AEPSLExport",
      dependencies: ["AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod"]
    ),
    // The benchmarks behind `aepsl bench`: engine throughput against the FMA peak (and
    // PyTorch), the dense CRF (against pydensecrf), the gradient allreduce. The reference
    // side is one Python runner, scripts/bench_reference.py.
    .target(
      name: "AEPSLBench",
      dependencies: ["AEPSLCRF", "AEPSLDistributed", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod", "COpenBLAS"]
    ),
    // The commands of the tool: option parsing, validate() and calls into the libraries.
    .target(
      name: "AEPSLCommands",
      dependencies: [
        "AEPSLBench",
        "AEPSLCRF",
        "AEPSLData",
        "AEPSLDistributed",
        "AEPSLEngine",
        "AEPSLExport",
        "AEPSLFiles",
        "AEPSLImaging",
        "AEPSLMethod",
        "AEPSLPipeline",
        "AEPSLReport",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // The command-line tool: main.swift runs AEPSLCommands' root command.
    .executableTarget(
      name: "aepsl",
      dependencies: ["AEPSLCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),

    // MARK: - Implementation details (C shims, not API)
    .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
    .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
    // Open MPI's C API (Debian's libopenmpi-dev), only with the MPI trait.
    .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
    // libjpeg and libpng report errors with longjmp, which Swift cannot catch: this small C
    // target turns them into return codes and messages.
    .target(
      name: "CImageCodecs",
      linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
    ),
    // The dense CRF's splat, blur, slice and softmax compiled for AVX2 and FMA by a target
    // attribute per function (no unsafe flags), chosen at run time by AEPSLCRF.
    .target(name: "CCRFKernels"),

    // MARK: - Tests
    .target(name: "AEPSLTestSupport", dependencies: ["AEPSLEngine"], path: "Sources/AEPSLTestSupport"),
    .testTarget(
      name: "EngineTests", dependencies: ["AEPSLEngine", "AEPSLFiles", "AEPSLTestSupport"],
      exclude: ["make_safetensors_fixture.py", "make_torch_reference.py", "make_largefov_reference.py", "range_server.py", "Fixtures"]
    ),
    .testTarget(name: "ImagingTests", dependencies: ["AEPSLFiles", "AEPSLImaging", "AEPSLTestSupport"]),
    .testTarget(name: "DatasetTests", dependencies: ["AEPSLData", "AEPSLFiles", "AEPSLTestSupport"]),
    .testTarget(name: "MethodTests", dependencies: ["AEPSLDistributed", "AEPSLFiles", "AEPSLMethod", "AEPSLTestSupport"]),
    // Seeded mutation fuzzing of every reader of untrusted bytes (bounded in CI; README: Reliability).
    .testTarget(name: "FuzzTests", dependencies: ["AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging"]),
    .testTarget(name: "CRFTests", dependencies: ["AEPSLCRF", "AEPSLTestSupport"]),
    // mpirun -np 2 against one process (needs the MPI trait and openmpi-bin).
    .testTarget(name: "DistributedTests", dependencies: ["AEPSLData", "AEPSLDistributed", "AEPSLEngine", "AEPSLMethod", "AEPSLTestSupport"]),
    .testTarget(name: "PipelineTests", dependencies: ["AEPSLCRF", "AEPSLData", "AEPSLFiles", "AEPSLMethod", "AEPSLPipeline", "AEPSLImaging"]),
    // Every command's --help and validate(), in process (like swift-argument-parser's example tests).
    .testTarget(
      name: "CLITests",
      dependencies: ["AEPSLBench", "AEPSLCommands", "AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLMethod", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    // The exported ONNX model run by onnxruntime (Python, .venv-test) against aepsl's own outputs.
    .testTarget(
      name: "ExportTests",
      dependencies: ["AEPSLData", "AEPSLEngine", "AEPSLExport", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod", "AEPSLTestSupport"],
      exclude: ["check_onnx.py"]
    ),
    // Real PASCAL VOC files from Debian's labelme-examples: the VOC and palette PNG readers,
    // predict, eval and the dense CRF (scripts/install-deps.sh --with-test-data).
    .testTarget(
      name: "VOCFilesTests",
      dependencies: ["AEPSLCRF", "AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod", "AEPSLTestSupport"]
    ),
    .testTarget(
      name: "ReportTests",
      dependencies: ["AEPSLData", "AEPSLEngine", "AEPSLFiles", "AEPSLImaging", "AEPSLMethod", "AEPSLReport"]
    ),
  ]
)
