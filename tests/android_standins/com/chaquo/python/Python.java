/*
 * STAND-IN FOR COMPILATION ONLY -- not Chaquopy, never shipped, never run.
 *
 * Mirrors the public API of com.chaquo.python.Python from the Chaquopy runtime
 * (https://github.com/chaquo/chaquopy, product/runtime/src/main/java/com/chaquo/python/Python.java):
 *   static Python getInstance(); static void start(Platform); static boolean isStarted();
 *   PyObject getModule(String); PyObject getBuiltins(); interface Platform { String getPath(); }
 * The test suite compiles android_bridge/ against these stand-ins with javac, so a
 * misspelled method or a wrong signature in the facade fails the build. In an app,
 * the real classes come from the Chaquopy Gradle plugin.
 */
package com.chaquo.python;

public class Python {
    /** Provides information needed to start Python (real: AndroidPlatform, GenericPlatform). */
    public interface Platform {
        String getPath();
    }

    private Python() {}

    public static synchronized Python getInstance() {
        throw new UnsupportedOperationException("stand-in for compilation only");
    }

    public static synchronized void start(Platform platform) {
        throw new UnsupportedOperationException("stand-in for compilation only");
    }

    public static synchronized boolean isStarted() {
        throw new UnsupportedOperationException("stand-in for compilation only");
    }

    public PyObject getModule(String name) {
        throw new UnsupportedOperationException("stand-in for compilation only");
    }

    public PyObject getBuiltins() {
        throw new UnsupportedOperationException("stand-in for compilation only");
    }
}
