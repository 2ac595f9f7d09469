/*
 * STAND-IN FOR COMPILATION ONLY -- not Chaquopy, never shipped, never run.
 *
 * Mirrors the public API of com.chaquo.python.PyObject from the Chaquopy runtime
 * (product/runtime/src/main/java/com/chaquo/python/PyObject.java, Chaquopy 12+):
 *   extends AbstractMap<String, PyObject> implements AutoCloseable;
 *   static PyObject fromJava(Object); <T> T toJava(Class<T>);
 *   boolean toBoolean(); byte toByte(); char toChar(); short toShort(); int toInt(); long toLong();
 *   float toFloat(); double toDouble();
 *   List<PyObject> asList(); Map<PyObject, PyObject> asMap(); Set<PyObject> asSet();
 *   long id(); PyObject type(); PyObject call(Object...); PyObject callThrows(Object...) throws Throwable;
 *   PyObject callAttr(String, Object...); PyObject callAttrThrows(String, Object...) throws Throwable;
 *   PyObject get(Object); PyObject put(String, Object); boolean containsKey(Object); PyObject remove(Object);
 *   String toString() (Python str()); String repr(); void close().
 * Python None comes back as Java null. Every method here throws: this class exists so
 * that javac checks the facade's calls against Chaquopy's real signatures.
 */
package com.chaquo.python;

import java.util.AbstractMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

public class PyObject extends AbstractMap<String, PyObject> implements AutoCloseable {
    private PyObject() {}

    private static UnsupportedOperationException standIn() {
        return new UnsupportedOperationException("stand-in for compilation only");
    }

    public static PyObject fromJava(Object o) { throw standIn(); }

    public <T> T toJava(Class<T> klass) { throw standIn(); }

    public boolean toBoolean() { throw standIn(); }

    public byte toByte() { throw standIn(); }

    public char toChar() { throw standIn(); }

    public short toShort() { throw standIn(); }

    public int toInt() { throw standIn(); }

    public long toLong() { throw standIn(); }

    public float toFloat() { throw standIn(); }

    public double toDouble() { throw standIn(); }

    public List<PyObject> asList() { throw standIn(); }

    public Map<PyObject, PyObject> asMap() { throw standIn(); }

    public Set<PyObject> asSet() { throw standIn(); }

    public long id() { throw standIn(); }

    public PyObject type() { throw standIn(); }

    public PyObject call(Object... args) { throw standIn(); }

    public PyObject callThrows(Object... args) throws Throwable { throw standIn(); }

    public PyObject callAttr(String key, Object... args) { throw standIn(); }

    public PyObject callAttrThrows(String key, Object... args) throws Throwable { throw standIn(); }

    @Override public boolean containsKey(Object key) { throw standIn(); }

    @Override public PyObject get(Object key) { throw standIn(); }

    @Override public PyObject put(String key, PyObject value) { throw standIn(); }

    public PyObject put(String key, Object value) { throw standIn(); }

    @Override public PyObject remove(Object key) { throw standIn(); }

    @Override public Set<Entry<String, PyObject>> entrySet() { throw standIn(); }

    @Override public boolean equals(Object that) { throw standIn(); }

    @Override public String toString() { throw standIn(); }

    public String repr() { throw standIn(); }

    @Override public int hashCode() { throw standIn(); }

    @Override public void close() { throw standIn(); }
}
