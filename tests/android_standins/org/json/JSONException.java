/*
 * STAND-IN FOR COMPILATION ONLY -- not the Android platform's org.json, never shipped.
 *
 * Mirrors android's org.json.JSONException (part of the Android platform since API 1):
 * a CHECKED exception (extends Exception), unlike the desktop JSON-java library where it
 * is unchecked -- so the facade must compile with it checked. Complete (two trivial
 * constructors), so test drivers may construct it.
 */
package org.json;

public class JSONException extends Exception {
    private static final long serialVersionUID = 1L;

    public JSONException(String s) {
        super(s);
    }

    public JSONException(String message, Throwable cause) {
        super(message, cause);
    }
}
