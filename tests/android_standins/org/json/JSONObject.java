/*
 * STAND-IN FOR COMPILATION ONLY -- not the Android platform's org.json, never shipped, never run.
 *
 * Mirrors the subset of android's org.json.JSONObject (API level 1+) that the facade uses,
 * with the platform's checked exceptions:
 *   JSONObject(); JSONObject(String) throws JSONException; int length();
 *   boolean has(String); boolean isNull(String); Object opt(String);
 *   Object get(String), boolean getBoolean(String), double getDouble(String), int getInt(String),
 *   long getLong(String), String getString(String), JSONArray getJSONArray(String),
 *   JSONObject getJSONObject(String) -- all throw JSONException;
 *   boolean optBoolean(String); String optString(String), optString(String, String);
 *   double optDouble(String, double);
 *   JSONArray optJSONArray(String); JSONObject optJSONObject(String);
 *   JSONObject put(String, boolean|double|int|long|Object) throws JSONException;
 *   static final Object NULL; String toString().
 */
package org.json;

public class JSONObject {
    public static final Object NULL = new Object();

    private static UnsupportedOperationException standIn() {
        return new UnsupportedOperationException("stand-in for compilation only");
    }

    public JSONObject() {}

    public JSONObject(String json) throws JSONException { throw standIn(); }

    public int length() { throw standIn(); }

    public boolean has(String name) { throw standIn(); }

    public boolean isNull(String name) { throw standIn(); }

    public Object opt(String name) { throw standIn(); }

    public Object get(String name) throws JSONException { throw standIn(); }

    public boolean getBoolean(String name) throws JSONException { throw standIn(); }

    public double getDouble(String name) throws JSONException { throw standIn(); }

    public int getInt(String name) throws JSONException { throw standIn(); }

    public long getLong(String name) throws JSONException { throw standIn(); }

    public String getString(String name) throws JSONException { throw standIn(); }

    public JSONArray getJSONArray(String name) throws JSONException { throw standIn(); }

    public JSONObject getJSONObject(String name) throws JSONException { throw standIn(); }

    public boolean optBoolean(String name) { throw standIn(); }

    public String optString(String name) { throw standIn(); }

    public String optString(String name, String fallback) { throw standIn(); }

    public double optDouble(String name, double fallback) { throw standIn(); }

    public JSONArray optJSONArray(String name) { throw standIn(); }

    public JSONObject optJSONObject(String name) { throw standIn(); }

    public JSONObject put(String name, boolean value) throws JSONException { throw standIn(); }

    public JSONObject put(String name, double value) throws JSONException { throw standIn(); }

    public JSONObject put(String name, int value) throws JSONException { throw standIn(); }

    public JSONObject put(String name, long value) throws JSONException { throw standIn(); }

    public JSONObject put(String name, Object value) throws JSONException { throw standIn(); }

    @Override public String toString() { throw standIn(); }
}
