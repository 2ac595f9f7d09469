/*
 * STAND-IN FOR COMPILATION ONLY -- not the Android platform's org.json, never shipped, never run.
 *
 * Mirrors the subset of android's org.json.JSONArray (API level 1+) that the facade uses,
 * with the platform's checked exceptions:
 *   JSONArray(); JSONArray(String) throws JSONException; int length();
 *   Object get(int), boolean getBoolean(int), double getDouble(int), int getInt(int), long getLong(int),
 *   String getString(int), JSONArray getJSONArray(int), JSONObject getJSONObject(int)
 *   -- all throw JSONException;
 *   JSONArray put(boolean|int|long|Object) (no exception); JSONArray put(double) throws JSONException;
 *   String toString().
 */
package org.json;

public class JSONArray {
    private static UnsupportedOperationException standIn() {
        return new UnsupportedOperationException("stand-in for compilation only");
    }

    public JSONArray() {}

    public JSONArray(String json) throws JSONException { throw standIn(); }

    public int length() { throw standIn(); }

    public Object get(int index) throws JSONException { throw standIn(); }

    public boolean getBoolean(int index) throws JSONException { throw standIn(); }

    public double getDouble(int index) throws JSONException { throw standIn(); }

    public int getInt(int index) throws JSONException { throw standIn(); }

    public long getLong(int index) throws JSONException { throw standIn(); }

    public String getString(int index) throws JSONException { throw standIn(); }

    public JSONArray getJSONArray(int index) throws JSONException { throw standIn(); }

    public JSONObject getJSONObject(int index) throws JSONException { throw standIn(); }

    public JSONArray put(boolean value) { throw standIn(); }

    public JSONArray put(double value) throws JSONException { throw standIn(); }

    public JSONArray put(int value) { throw standIn(); }

    public JSONArray put(long value) { throw standIn(); }

    public JSONArray put(Object value) { throw standIn(); }

    @Override public String toString() { throw standIn(); }
}
