/*
 * STAND-IN FOR COMPILATION ONLY -- not Chaquopy, never shipped.
 *
 * Mirrors com.chaquo.python.PyException from the Chaquopy runtime
 * (product/runtime/src/main/java/com/chaquo/python/PyException.java): an unchecked
 * exception with the four standard constructors. Chaquopy throws it from any call
 * into Python that raises; its message names the Python exception class and holds
 * the Python message (the exact layout differs between Chaquopy versions). Unlike
 * the other stand-ins this one is complete, so test drivers may construct it.
 */
package com.chaquo.python;

public class PyException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PyException() {}

    public PyException(String s) {
        super(s);
    }

    public PyException(String s, Throwable throwable) {
        super(s, throwable);
    }

    public PyException(Throwable throwable) {
        super(throwable);
    }
}
