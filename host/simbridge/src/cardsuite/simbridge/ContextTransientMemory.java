package cardsuite.simbridge;

import com.licel.jcardsim.base.TransientMemory;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import javacard.framework.JCSystem;
import javacard.security.Key;
import javacard.security.KeyBuilder;

/**
 * jCardSim's transient memory, with an owner for every transient array and key: the context (Java package) that
 * was active when it was made. jCardSim clears every CLEAR_ON_DESELECT array at any deselection; a card clears
 * only the memory of the context that stops being active (Java Card RE 3.0.5 6.1.1 and 4.5: a context stays
 * active while one of its applets is selected on some channel, its multiselected applets share that memory).
 * Transient keys (KeyBuilder TYPE_*_TRANSIENT_RESET/_DESELECT) are cleared with their event too (JC API
 * KeyBuilder: "the key is uninitialized" after it), which jCardSim's keys do not do on their own.
 * Lookups are by identity: {@link #isTransient} runs at every persistent-write check.
 */
final class ContextTransientMemory extends TransientMemory {
    private static final byte NOT_TRANSIENT = JCSystem.NOT_A_TRANSIENT_OBJECT;
    /** Key types whose contents are cleared at reset, and at deselect, read from KeyBuilder's constant names. */
    private static final boolean[] RESET_KEY_TYPE = keyTypes("_TRANSIENT_RESET");
    private static final boolean[] DESELECT_KEY_TYPE = keyTypes("_TRANSIENT_DESELECT");

    private final Map<Object, Byte> kind = new IdentityHashMap<>();
    private final Map<Object, String> owner = new IdentityHashMap<>();
    private final List<Key> resetKeys = new ArrayList<>();
    private final List<Key> deselectKeys = new ArrayList<>();
    /** The context allocations are made in: set by the runtime whenever it switches context. */
    private String context;

    void setContext(String packageName) {
        context = packageName;
    }

    String context() {
        return context;
    }

    @Override
    protected void storeArray(Object array, byte event) {
        super.storeArray(array, event); // checks the event (SystemException.ILLEGAL_VALUE)
        kind.put(array, event);
        if (context != null) {
            owner.put(array, context);
        }
    }

    @Override
    public byte isTransient(Object array) {
        Byte event = kind.get(array);
        return event == null ? NOT_TRANSIENT : event;
    }

    /** JCSystem.CLEAR_ON_RESET or CLEAR_ON_DESELECT for a transient KeyBuilder key type, else 0 (persistent). */
    static byte eventOfKeyType(byte keyType) {
        int type = keyType & 0xFF;
        return RESET_KEY_TYPE[type] ? JCSystem.CLEAR_ON_RESET
                : DESELECT_KEY_TYPE[type] ? JCSystem.CLEAR_ON_DESELECT : 0;
    }

    /** A key KeyBuilder built for an applet: a transient one is remembered with its owner and event. */
    void registerKey(Key key, byte event) {
        if (event != JCSystem.CLEAR_ON_RESET && event != JCSystem.CLEAR_ON_DESELECT) {
            return;
        }
        (event == JCSystem.CLEAR_ON_RESET ? resetKeys : deselectKeys).add(key);
        if (context != null) {
            owner.put(key, context);
        }
    }

    /** Not used by the bridge (it clears per context); kept meaning "every context is deselected". */
    @Override
    protected void clearOnDeselect() {
        super.clearOnDeselect();
        deselectKeys.forEach(Key::clearKey);
    }

    /** A context is no longer active on any channel: its CLEAR_ON_DESELECT arrays and keys are cleared. */
    void clearOnDeselect(String packageName) {
        for (Object array : clearOnDeselect) {
            if (packageName.equals(owner.get(array))) {
                zero(array);
            }
        }
        for (Key key : deselectKeys) {
            if (packageName.equals(owner.get(key))) {
                key.clearKey();
            }
        }
    }

    /** Reset or power-up: every transient array is zero, every transient key uninitialised. */
    @Override
    protected void clearOnReset() {
        super.clearOnReset();
        resetKeys.forEach(Key::clearKey);
        deselectKeys.forEach(Key::clearKey);
    }

    private static void zero(Object array) {
        if (array instanceof byte[]) {
            Arrays.fill((byte[]) array, (byte) 0);
        } else if (array instanceof short[]) {
            Arrays.fill((short[]) array, (short) 0);
        } else if (array instanceof boolean[]) {
            Arrays.fill((boolean[]) array, false);
        } else if (array instanceof Object[]) {
            Arrays.fill((Object[]) array, null);
        }
    }

    private static boolean[] keyTypes(String suffix) {
        boolean[] types = new boolean[256];
        for (Field field : KeyBuilder.class.getFields()) {
            if (Modifier.isStatic(field.getModifiers()) && field.getType() == byte.class
                    && field.getName().startsWith("TYPE_") && field.getName().endsWith(suffix)) {
                try {
                    types[field.getByte(null) & 0xFF] = true;
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return types;
    }
}
