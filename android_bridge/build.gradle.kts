// Example app-module build file (app/build.gradle.kts) for an Android app using jointdnn-edge through
// Chaquopy. Copy the parts you need; android_bridge/README.md explains each step. Not built by this
// repository's tests (no Android SDK here): the Java facade it includes is compiled by
// tests/test_android_java.py against stand-ins of the Chaquopy and org.json classes.
//
// The project's top-level build.gradle.kts declares the plugin versions:
//     plugins {
//         id("com.android.application") version "8.7.3" apply false
//         id("com.chaquo.python") version "17.0.0" apply false
//     }
// and settings.gradle.kts lists mavenCentral() in pluginManagement.repositories.

plugins {
    id("com.android.application")
    id("com.chaquo.python")
}

// Where your jointdnn-edge checkout is (or a copy of its python/ and android_bridge/ folders).
val jointdnnEdge = rootProject.file("../jointdnn-edge")

android {
    namespace = "com.example.splitinference"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.example.splitinference"
        minSdk = 24 // Chaquopy's minimum
        targetSdk = 35
        ndk {
            // Python is native code: list the ABIs to ship. arm64-v8a for phones, x86_64 for emulators.
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    sourceSets {
        getByName("main") {
            // the typed Java facade: io.jointdnn.edge.JointDnn, Schedule, Tensor, Session, Cloud
            java.srcDir(jointdnnEdge.resolve("android_bridge/src/main/java"))
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
}

// The SDK's Python package, copied without native files built for the workstation (a desktop
// _core*.so would not load on Android anyway; the native planner for the phone comes as a wheel, below).
val syncJointDnnPython by tasks.registering(Sync::class) {
    from(jointdnnEdge.resolve("python")) {
        include("jointdnn_edge/**")
        exclude("**/*.so", "**/*.pyd", "**/__pycache__/**")
    }
    into(layout.buildDirectory.dir("jointdnn-python"))
}
tasks.named("preBuild") { dependsOn(syncJointDnnPython) }

// Full mode only: the TFLite flatbuffer schema the SDK reads models with. It ships inside the
// ai-edge-litert wheel, which has no Android build, so copy its three pure-Python files from the
// workstation's installation (`python -c "import ai_edge_litert; print(ai_edge_litert.__path__[0])"`)
// into a small ai_edge_litert package, and add the output folder to chaquopy.sourceSets below.
// ai-edge-litert is Apache-2.0: keep its license with the copy.
// val aiEdgeLitert = file("/path/to/site-packages/ai_edge_litert")
// val syncTfliteSchema by tasks.registering(Sync::class) {
//     from(aiEdgeLitert) {
//         include("schema_py_generated.py", "tools/flatbuffer_utils.py", "tools/mmap_utils.py")
//         into("ai_edge_litert")
//     }
//     into(layout.buildDirectory.dir("tflite-schema"))
//     doLast { layout.buildDirectory.file("tflite-schema/ai_edge_litert/__init__.py").get().asFile.writeText("") }
// }
// tasks.named("preBuild") { dependsOn(syncTfliteSchema) }

chaquopy {
    defaultConfig {
        version = "3.11" // the Python the SDK is tested with; Chaquopy 17 offers 3.10 to 3.14

        pip {
            // Plan-only mode with a lookup table needs nothing more: the planner, the lookup tables
            // and the bridge are pure Python (standard library only).

            // The activation codec (encodeFrame/decodeFrame) and exact plans on a cost table at full
            // speed need numpy; the codec also needs zstandard. Both come prebuilt from Chaquopy's
            // package repository.
            install("numpy")
            install("zstandard")

            // The cloud client (openCloud, and sessions with a cloud URL): httpx, pure Python.
            install("httpx")

            // Full mode (openSession) also needs flatbuffers (pure Python), the schema files above,
            // and a TFLite interpreter for Python: Chaquopy's repository (https://chaquo.com/pypi-13.1/)
            // has tflite-runtime 2.5.0; check that it has a build for your Python version and ABI.
            // install("flatbuffers")
            // install("tflite-runtime")

            // Native planner (optional): the SDK wheel cross-built for the device's ABI (README, "Native
            // speed"). It carries the whole package, so then drop the sourceSets block below. Install it
            // without dependencies: its desktop ones (onnxruntime, scipy, uvicorn, ...) have no Android
            // builds and are not needed here; with --no-deps, list httpx's own requirements (httpcore,
            // h11, anyio, sniffio, idna, certifi) yourself.
            // options("--no-deps")
            // install("../wheels/jointdnn_edge-0.1.0-cp311-cp311-android_24_arm64_v8a.whl")
        }
    }
    sourceSets {
        getByName("main") {
            srcDir(layout.buildDirectory.dir("jointdnn-python"))
            // srcDir(layout.buildDirectory.dir("tflite-schema"))  // full mode (see syncTfliteSchema)
        }
    }
}

dependencies {
    // Plan-only mode: the app runs its TFLite slices itself with LiteRT's Interpreter API.
    implementation("com.google.ai.edge.litert:litert:1.4.1")
}
