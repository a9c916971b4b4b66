// Unit square, unstructured triangles. Physical lines follow Firedrake's UnitSquareMesh:
// 1: x=0, 2: x=1, 3: y=0, 4: y=1; the surface is physical group 1.
h = 0.1;
Point(1) = {0, 0, 0, h};
Point(2) = {1, 0, 0, h};
Point(3) = {1, 1, 0, h};
Point(4) = {0, 1, 0, h};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Curve Loop(1) = {1, 2, 3, 4};
Plane Surface(1) = {1};
Physical Curve(1) = {4};
Physical Curve(2) = {2};
Physical Curve(3) = {1};
Physical Curve(4) = {3};
Physical Surface(1) = {1};
