package cardsuite.simbridge;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.LinkedHashSet;
import java.util.Set;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.Shareable;

/**
 * The applet firewall at a Shareable interface object (Java Card RE 3.0.5 6.2.4, 6.2.7, 6.2.8): what a client gets
 * from JCSystem.getAppletShareableInterfaceObject is a proxy implementing only the object's Shareable interfaces;
 * each call through it switches to the server's context (JCSystem.getAID is the server, getPreviousContextAID the
 * caller) and back. Arrays may cross the boundary only when global (the APDU buffer, JCRE 6.2.2); any other array,
 * and any object that is not Shareable, an AID or the APDU, is refused with SecurityException, at the call or the
 * return rather than at the first access as a card does (the simulator does not check every array load).
 */
final class Firewall implements InvocationHandler {
    private final CardRuntime runtime;
    private final Object target;
    private final AID owner;
    private final String ownerContext;

    private Firewall(CardRuntime runtime, Object target, AID owner, String ownerContext) {
        this.runtime = runtime;
        this.target = target;
        this.owner = owner;
        this.ownerContext = ownerContext;
    }

    /** The object as a client in another context sees it; an object of the caller's own context stays itself. */
    static Shareable guard(CardRuntime runtime, Shareable object, AID owner, String ownerContext, String caller) {
        if (Proxy.isProxyClass(object.getClass()) || ownerContext.equals(caller)) {
            return object;
        }
        Set<Class<?>> interfaces = new LinkedHashSet<>();
        for (Class<?> type = object.getClass(); type != null; type = type.getSuperclass()) {
            for (Class<?> implemented : type.getInterfaces()) {
                if (Shareable.class.isAssignableFrom(implemented)) {
                    interfaces.add(implemented);
                }
            }
        }
        return (Shareable) Proxy.newProxyInstance(object.getClass().getClassLoader(),
                interfaces.toArray(new Class<?>[0]), new Firewall(runtime, object, owner, ownerContext));
    }

    @Override
    public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
        if (method.getDeclaringClass() == Object.class) {
            switch (method.getName()) {
                case "equals": return proxy == args[0];
                case "hashCode": return System.identityHashCode(proxy);
                default: return "Shareable " + method.getDeclaringClass().getName();
            }
        }
        if (args != null) {
            for (Object argument : args) {
                checkCrossing(argument);
            }
        }
        String caller = runtime.contextPackage();
        Object result = runtime.inContext(owner, ownerContext, () -> {
            try {
                return method.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
        if (result instanceof Shareable) {
            return guard(runtime, (Shareable) result, owner, ownerContext, caller);
        }
        checkCrossing(result);
        return result;
    }

    /** JCRE 6.2.8: primitives, Shareable objects, JCRE entry point objects (APDU, AID) and global arrays pass. */
    private void checkCrossing(Object value) {
        if (value == null || value instanceof Number || value instanceof Boolean || value instanceof Character
                || value instanceof Shareable || value instanceof APDU || value instanceof AID) {
            return;
        }
        if (value.getClass().isArray() && runtime.isGlobal(value)) {
            return;
        }
        throw new SecurityException("firewall: " + value.getClass().getSimpleName() + " of another context");
    }
}
