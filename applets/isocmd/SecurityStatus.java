package cardsuite.isocmd;

/**
 * Implemented by the applet that owns a tree: it keeps the PINs and keys, the library only asks.
 * FileSystem calls it for every access condition that is neither ISOFS.AC_ALWAYS nor AC_NEVER.
 */
public interface SecurityStatus {
    /** Whether the condition with this reference (a PIN or key reference of the applet) is met now. */
    boolean isSatisfied(byte reference);
}
